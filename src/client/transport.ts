// One JSON request to the broker over the global fetch (undici, which keeps
// connections alive between requests), turning every way it can fail into
// an UsherClientError.

import {
  CLIENT_ERROR_CODES,
  UsherClientError,
  connectionError,
} from './errors.js';

export interface Answer<T> {
  status: number;
  data: T;
}

/** Who the client speaks as; see ClientOptions in client.ts. */
export interface Credentials {
  user?: string;
  password?: string;
  token?: string;
}

export class Transport {
  /** The broker's base URL without a trailing slash or credentials. */
  readonly baseUrl: string;
  /** The Authorization header, or undefined to send none (the guest). */
  readonly #authorization: string | undefined;

  constructor(url: string, credentials: Credentials = {}) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (err) {
      throw new UsherClientError(
        CLIENT_ERROR_CODES.INVALID_ARGUMENT,
        0,
        `invalid Usher URL "${url}": expected e.g. http://127.0.0.1:8080`,
        { field: 'url', cause: err },
      );
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new UsherClientError(
        CLIENT_ERROR_CODES.INVALID_ARGUMENT,
        0,
        `invalid Usher URL "${url}": only http and https are supported`,
        { field: 'url' },
      );
    }
    // fetch refuses a URL with user:password in it: they move to a header.
    const user = credentials.user ?? decodeURIComponent(parsed.username);
    const password = credentials.password ?? decodeURIComponent(parsed.password);
    parsed.username = '';
    parsed.password = '';
    if (credentials.token !== undefined && credentials.token !== '') {
      this.#authorization = `Bearer ${credentials.token}`;
    } else if (user !== '') {
      const pair = Buffer.from(`${user}:${password}`, 'utf8').toString('base64');
      this.#authorization = `Basic ${pair}`;
    }

    // Keep a path prefix (a broker behind a proxy) but not the last slash.
    this.baseUrl = parsed.href.replace(/\/+$/, '');
  }

  /**
   * Sends `body` as JSON and parses the JSON answer. A 204 answers
   * `undefined`. Refusals throw with the broker's code and field.
   */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
    /** A non-2xx status whose body is an answer, not an error (healthz). */
    answerStatus?: number,
  ): Promise<Answer<T>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.#authorization !== undefined) headers.authorization = this.#authorization;

    let response: Response;
    let text: string;
    try {
      response = await fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
      text = await response.text();
    } catch (err) {
      if (signal?.aborted) {
        throw new UsherClientError(
          CLIENT_ERROR_CODES.ABORTED,
          0,
          `${method} ${path} was aborted`,
          { cause: err },
        );
      }
      throw connectionError(this.baseUrl, err);
    }

    if (response.status === 204) {
      return { status: 204, data: undefined as T };
    }
    const data = parseJson(text);
    if (!response.ok && response.status !== answerStatus) {
      throw refusal(response.status, data, text, method, path, response.headers);
    }
    if (data === undefined) {
      throw badResponse(response.status, method, path, text);
    }
    return { status: response.status, data: data as T };
  }
}

/** The broker's error object, or a BAD_RESPONSE when there is none. */
function refusal(
  status: number,
  data: unknown,
  text: string,
  method: string,
  path: string,
  headers: Headers,
): UsherClientError {
  const error = (data as { error?: unknown } | undefined)?.error;
  if (error && typeof error === 'object') {
    const { code, message, field, level, reason } = error as Record<string, unknown>;
    if (typeof code === 'string' && typeof message === 'string') {
      return new UsherClientError(code, status, message, {
        field: typeof field === 'string' ? field : undefined,
        retryAfterMs: retryAfterMs(headers.get('retry-after')),
        level: typeof level === 'string' ? level : undefined,
        reason: typeof reason === 'string' ? reason : undefined,
      });
    }
  }
  return badResponse(status, method, path, text);
}

/** Retry-After in seconds or as an HTTP date (RFC 9110 10.2.3). */
function retryAfterMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function badResponse(
  status: number,
  method: string,
  path: string,
  text: string,
): UsherClientError {
  const excerpt = text.length > 120 ? `${text.slice(0, 120)}...` : text;
  return new UsherClientError(
    CLIENT_ERROR_CODES.BAD_RESPONSE,
    status,
    `unexpected answer to ${method} ${path} (status ${status}): ${excerpt}`,
  );
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
