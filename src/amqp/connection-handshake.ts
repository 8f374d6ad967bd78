// The handshake of an AMQP connection (connection.ts), from the protocol
// header to open-ok: start, the login (checked by src/auth, on the thread
// pool), tune and open. With it go what it sets up for the connection's
// life: the watch that ends a login whose user changed, and
// connection.blocked for a client that takes it.

import type { Socket } from 'node:net';

import type { Principal } from '../auth/permissions.js';
import { UsherError } from '../errors.js';
import { watchAdmission } from './blocking.js';
import type { AmqpConnection, Phase } from './connection.js';
import { REPLY, SERVER_CAPABILITIES } from './constants.js';
import { AmqpError } from './errors.js';
import { decodeTable, plainValue, tableFrom, type FieldTable } from './field-table.js';
import type { AmqpFrameDecoder } from './frame-decoder.js';
import type { Heartbeats } from './heartbeats.js';

const HANDSHAKE_TIMEOUT_MS = 10_000;

/** What the handshake needs of its connection beyond its public face. */
export interface ConnectionHandshakeDeps {
  /** Reads frames of up to the frame_max tune-ok settles on. */
  readonly decoder: AmqpFrameDecoder;
  /** Started at the interval tune-ok settles on. */
  readonly heartbeats: Heartbeats;
}

export class ConnectionHandshake {
  /** The client takes connection.blocked (src/amqp/blocking.ts). */
  blockable = false;
  private readonly timer: NodeJS.Timeout;
  private stopWatchingLogin: () => void = () => {};
  private stopWatchingAdmission: () => void = () => {};

  constructor(
    private readonly connection: AmqpConnection,
    private readonly socket: Socket,
    private readonly deps: ConnectionHandshakeDeps,
  ) {
    // A client that never finishes the handshake is let go (RabbitMQ: 10 s).
    this.timer = setTimeout(() => {
      if (this.connection.phase !== 'open-done') this.socket.destroy();
    }, HANDSHAKE_TIMEOUT_MS);
    this.timer.unref();
  }

  private get context() {
    return this.connection.context;
  }

  private get logger() {
    return this.connection.logger;
  }

  private get broker() {
    return this.connection.broker;
  }

  sendStart(): void {
    this.connection.phase = 'start-ok';
    this.connection.send(0, {
      name: 'connection.start',
      versionMajor: 0,
      versionMinor: 9,
      serverProperties: tableFrom({
        product: 'Usher',
        version: '0.1.0',
        platform: `Node.js ${process.version}`,
        capabilities: { ...SERVER_CAPABILITIES },
      }),
      mechanisms: Buffer.from('PLAIN AMQPLAIN'),
      locales: Buffer.from('en_US'),
    });
  }

  onStartOk(mechanism: string, response: Buffer): void {
    this.expect('start-ok', 'connection.start-ok');
    if (this.context.refusal !== null) {
      this.connection.closeWith(new AmqpError(REPLY.NOT_ALLOWED, this.context.refusal), false);
      return;
    }
    // Nothing else is accepted while the password is checked (scrypt runs
    // on the thread pool); a pipelined method is out of order.
    this.connection.phase = 'authenticating';
    const credentials = parseCredentials(mechanism, response) ?? { user: '', password: '' };
    void this.authenticate(mechanism, credentials);
  }

  private async authenticate(mechanism: string, credentials: Credentials): Promise<void> {
    let principal: Principal;
    try {
      principal = await this.context.authenticator.login(
        { kind: 'password', ...credentials },
        { protocol: 'amqp', address: this.socket.remoteAddress },
      );
    } catch (err) {
      if (this.connection.phase !== 'authenticating') return;
      if (!(err instanceof UsherError)) this.logger.error({ err }, 'login failed unexpectedly');
      const detail = err instanceof UsherError ? err.message : 'internal error';
      this.connection.closeWith(
        new AmqpError(REPLY.ACCESS_REFUSED, `${mechanism.slice(0, 20)} login refused: ${detail}`),
        false,
      );
      return;
    }
    // The peer may have gone while the password was checked.
    if (this.connection.phase !== 'authenticating') return;
    this.connection.principal = principal;
    // A deleted user, a new password or other rights end the connection,
    // as in RabbitMQ: it would otherwise keep what it logged in with.
    const { authenticator } = this.context;
    this.stopWatchingLogin = authenticator.store.onChange(() => {
      if (!authenticator.isCurrent(principal)) {
        this.connection.closeWith(
          new AmqpError(
            REPLY.CONNECTION_FORCED,
            `user '${principal.name}' was deleted or changed; log in again`,
          ),
          false,
        );
      }
    });
    this.connection.phase = 'tune-ok';
    this.connection.send(0, {
      name: 'connection.tune',
      channelMax: this.context.channelMax,
      frameMax: this.context.frameMax,
      heartbeat: this.context.heartbeatSeconds,
    });
  }

  onTuneOk(channelMax: number, frameMax: number, heartbeat: number): void {
    this.expect('tune-ok', 'connection.tune-ok');
    if (frameMax !== 0 && (frameMax < 4096 || frameMax > this.context.frameMax)) {
      throw new AmqpError(
        REPLY.NOT_ALLOWED,
        `negotiated frame_max = ${frameMax} is outside 4096..${this.context.frameMax}`,
      );
    }
    this.connection.frameMax =
      frameMax === 0 ? this.context.frameMax : Math.min(frameMax, this.context.frameMax);
    this.deps.decoder.frameMax = this.connection.frameMax;
    this.context.channelMax =
      channelMax === 0
        ? this.context.channelMax
        : Math.min(channelMax, this.context.channelMax);
    this.connection.phase = 'open';
    this.deps.heartbeats.start(heartbeat);
  }

  onOpen(virtualHost: string): void {
    this.expect('open', 'connection.open');
    if (virtualHost !== '/' && virtualHost !== '') {
      throw new AmqpError(
        REPLY.NOT_ALLOWED,
        `vhost '${virtualHost}' does not exist; Usher has only '/'`,
      );
    }
    this.connection.phase = 'open-done';
    clearTimeout(this.timer);
    this.connection.send(0, { name: 'connection.open-ok' });
    if (this.blockable) {
      this.stopWatchingAdmission = watchAdmission(this.broker.admission, (method) => {
        if (this.connection.phase === 'open-done') this.connection.send(0, method);
      });
    }
  }

  private expect(phase: Phase, method: string): void {
    if (this.connection.phase !== phase) {
      throw new AmqpError(REPLY.COMMAND_INVALID, `${method} is out of order`);
    }
  }

  /** The connection is gone: no more waiting for the handshake, nor watches. */
  stop(): void {
    this.stopWatchingAdmission();
    this.stopWatchingLogin();
    clearTimeout(this.timer);
  }
}

// --- helpers --------------------------------------------------------------

interface Credentials {
  user: string;
  password: string;
}

function parseCredentials(mechanism: string, response: Buffer): Credentials | null {
  if (mechanism === 'PLAIN') {
    // authzid NUL authcid NUL password (RFC 4616)
    const parts = response.toString('utf8').split('\u0000');
    if (parts.length !== 3) return null;
    return { user: parts[1], password: parts[2] };
  }
  if (mechanism === 'AMQPLAIN') {
    // A field table without its length prefix.
    let table: FieldTable;
    try {
      const sized = Buffer.alloc(response.length + 4);
      sized.writeUInt32BE(response.length, 0);
      response.copy(sized, 4);
      table = decodeTable(sized);
    } catch {
      return null;
    }
    const login = table.get('LOGIN');
    const password = table.get('PASSWORD');
    if (login === undefined || password === undefined) return null;
    return { user: String(plainValue(login)), password: String(plainValue(password)) };
  }
  return null;
}
