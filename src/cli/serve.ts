// `usher serve`: runs a broker over HTTP until SIGINT or SIGTERM, logging
// JSON lines to stdout with pino. On a signal it stops taking requests,
// closes the broker (flushing the log) and exits 0; a second signal exits
// at once with 1. SIGHUP reads the TLS certificate and key again.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Server as TlsServer } from 'node:tls';

import type { Command } from 'commander';

import { MAX_CONSUMER_TIMEOUT_MS } from '../amqp/constants.js';
import type { AdmissionSettings } from '../broker/admission.js';
import { UsherError } from '../errors.js';
import type { Listeners } from '../http/server.js';

import { readTlsFiles, rereadTlsFiles, serverTlsOptions, type TlsFiles } from '../net/tls.js';

import {
  CliError,
  UsageError,
  durationFlag,
  durationUpTo,
  intFlag,
  sizeFlag,
  type Cli,
  type CommandGroup,
} from './context.js';

interface ServeFlags {
  data: string;
  port: number;
  host: string;
  maxMessageSize?: number;
  segmentSize?: number;
  checkpointEvery?: number;
  diskFloor?: number;
  amqpPort: number;
  memoryBudget?: number;
  pressureBacklog?: number;
  queuePressureBacklog?: number;
  criticalBacklog?: number;
  pressureMinPriority?: number;
  criticalMinPriority?: number;
  eventLoopPressure?: number;
  eventLoopCritical?: number;
  config?: string;
  guest: boolean;
  protectMetrics?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsOnly?: boolean;
  amqpsPort: number;
  maxConnectionsPerSource?: number;
  amqpJournalCompact?: number;
  amqpConsumerTimeout?: number;
}

export const serveCommands: CommandGroup = {
  register(program: Command, _cli: Cli): void {
    program
      .command('serve')
      .description('run a broker')
      .option('--data <dir>', 'data directory', './usher-data')
      .option('--port <n>', 'TCP port; 0 picks one', intFlag(0, 65535), 8080)
      .option('--host <host>', 'address to listen on', '127.0.0.1')
      .option(
        '--max-message-size <size>',
        'largest message body (default 16MiB)',
        sizeFlag,
      )
      .option('--segment-size <size>', 'log segment size (default 64MiB)', sizeFlag)
      .option(
        '--checkpoint-every <size>',
        'log written between checkpoints, at least (default 64MiB; 0 writes none)',
        sizeFlag,
      )
      .option(
        '--amqp-port <n>',
        'AMQP 0-9-1 port; 0 picks one, -1 turns AMQP off',
        intFlag(-1, 65535),
        5672,
      )
      .option(
        '--disk-floor <size>',
        'refuse publishes below this much free disk (default 100MiB)',
        sizeFlag,
      )
      .option(
        '--memory-budget <size>',
        'RSS budget: pressure at 70%, critical at 85% (default: not watched)',
        sizeFlag,
      )
      .option('--pressure-backlog <n>', 'waiting messages (all queues) for pressure', intFlag(1))
      .option(
        '--queue-pressure-backlog <n>',
        'waiting messages in one queue past which it alone sheds as at pressure',
        intFlag(1),
      )
      .option('--critical-backlog <n>', 'waiting messages (all queues) for critical', intFlag(1))
      .option(
        '--pressure-min-priority <p>',
        'at pressure, refuse lower priorities (default 4)',
        intFlag(0, 10),
      )
      .option(
        '--critical-min-priority <p>',
        'at critical, refuse lower priorities (default 7)',
        intFlag(0, 10),
      )
      .option(
        '--event-loop-pressure <duration>',
        'event-loop delay (p99) for pressure (default: not a signal)',
        durationFlag,
      )
      .option(
        '--event-loop-critical <duration>',
        'event-loop delay (p99) for critical (default: not a signal)',
        durationFlag,
      )
      .option(
        '--config <file>',
        'JSON file of the limit and admission flags above (memory budget to ' +
          'event-loop critical), camelCased; flags win',
      )
      .option('--no-guest', 'refuse the guest user, even from loopback')
      .option('--protect-metrics', 'require credentials on /healthz and /metrics too')
      .option('--tls-cert <file>', 'PEM certificate: HTTP becomes HTTPS, AMQPS opens')
      .option('--tls-key <file>', 'PEM private key of --tls-cert')
      .option('--amqps-port <n>', 'AMQP over TLS port; 0 picks one', intFlag(0, 65535), 5671)
      .option('--tls-only', 'no plaintext listener at all: plain AMQP stays closed')
      .option(
        '--max-connections-per-source <n>',
        'open connections per client address, per protocol (default 4096)',
        intFlag(1),
      )
      .option(
        '--amqp-journal-compact <size>',
        'rewrite exchanges.json once exchanges.journal passes this and its size (default 4MiB)',
        sizeFlag,
      )
      .option(
        '--amqp-consumer-timeout <duration>',
        'close an AMQP channel (406) holding a delivery unacked this long (default 30m)',
        durationUpTo(MAX_CONSUMER_TIMEOUT_MS),
      )
      .action(serve);
  },
};

async function serve(given: ServeFlags): Promise<void> {
  let flags = given;
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    throw new UsageError('--tls-cert and --tls-key go together');
  }
  if (flags.tlsOnly && flags.tlsCert === undefined) {
    throw new UsageError('--tls-only needs --tls-cert and --tls-key');
  }
  let tls: TlsFiles | undefined;
  if (flags.tlsCert !== undefined && flags.tlsKey !== undefined) {
    try {
      tls = await readTlsFiles(flags.tlsCert, flags.tlsKey);
    } catch (err) {
      throw new CliError(`cannot read the TLS certificate or key: ${reason(err)}`, { cause: err });
    }
  }

  // Loaded here, not at the top: other commands stay quick to start.
  const [
    { pino },
    { Broker, DEFAULT_MAX_MESSAGE_BYTES },
    { createHttpServer },
    { createAmqpServer },
    { openAuth },
  ] = await Promise.all([
    import('pino'),
    import('../broker/broker.js'),
    import('../http/server.js'),
    import('../amqp/server.js'),
    import('../auth/bootstrap.js'),
  ]);
  const logger = pino({ name: 'usher' });

  flags = { ...readConfig(flags.config), ...definedOnly(flags) };
  // Node's default for SIGHUP ends the process. Replaying a large log
  // takes seconds, and a log rotator's HUP then must not kill the start.
  const hupWhileStarting = () => logger.info({}, 'SIGHUP while starting: ignored');
  process.on('SIGHUP', hupWhileStarting);
  logger.info({ dataDir: flags.data }, 'usher starting');
  let broker: Awaited<ReturnType<typeof Broker.open>>;
  try {
    broker = await Broker.open({
      dataDir: resolve(flags.data),
      logger,
      maxMessageBytes: flags.maxMessageSize,
      segmentBytes: flags.segmentSize,
      checkpoints: flags.checkpointEvery === 0
        ? { enabled: false }
        : { minBytes: flags.checkpointEvery },
      diskFloorBytes: flags.diskFloor,
      admission: admissionSettings(flags),
    });
  } catch (err) {
    // A refusal the broker explains (lock held, unreadable log) needs no
    // stack trace; anything else is logged whole.
    if (err instanceof UsherError) {
      logger.fatal({ code: err.code, dataDir: flags.data }, err.message);
    } else {
      logger.fatal({ err, dataDir: flags.data }, 'cannot open data directory');
    }
    throw new CliError(`cannot open data directory "${flags.data}": ${reason(err)}`, {
      cause: err,
    });
  }

  let auth: Awaited<ReturnType<typeof openAuth>>;
  try {
    auth = await openAuth({ dataDir: resolve(flags.data), guest: flags.guest, logger });
  } catch (err) {
    await broker.close();
    throw new CliError(`cannot open the user file in "${flags.data}": ${reason(err)}`, {
      cause: err,
    });
  }
  const { authenticator } = auth;

  const listeners: Listeners = {};
  const app = createHttpServer(broker, {
    logger,
    listeners,
    maxMessageBytes: flags.maxMessageSize,
    authenticator,
    protectSystemRoutes: flags.protectMetrics ?? false,
    tls,
    maxConnectionsPerSource: flags.maxConnectionsPerSource,
  });
  try {
    await app.listen({ host: flags.host, port: flags.port });
  } catch (err) {
    await broker.close();
    throw new CliError(`cannot listen on ${flags.host}:${flags.port}: ${reason(err)}` +
      ' (--port N picks another, 0 any free one)', {
      cause: err,
    });
  }

  const amqp =
    flags.amqpPort < 0
      ? null
      : await createAmqpServer({
          broker,
          logger,
          dataDir: resolve(flags.data),
          maxMessageBytes: flags.maxMessageSize ?? DEFAULT_MAX_MESSAGE_BYTES,
          authenticator,
          tls,
          maxConnectionsPerSource: flags.maxConnectionsPerSource,
          topologyJournalCompactBytes: flags.amqpJournalCompact,
          consumerTimeoutMs: flags.amqpConsumerTimeout,
        });
  if (amqp !== null) {
    try {
      if (!flags.tlsOnly) {
        const address = await amqp.listen(flags.amqpPort, flags.host);
        listeners.amqp = address.port;
        const amqpUrl = `amqp://${flags.host}:${address.port}`;
        logger.info({ amqpUrl }, `usher AMQP 0-9-1 on ${amqpUrl}`);
      }
      if (tls !== undefined) {
        const address = await amqp.listenTls(flags.amqpsPort, flags.host);
        listeners.amqps = address.port;
        const amqpsUrl = `amqps://${flags.host}:${address.port}`;
        logger.info({ amqpsUrl }, `usher AMQP 0-9-1 over TLS on ${amqpsUrl}`);
      }
    } catch (err) {
      await app.close();
      await broker.close();
      throw new CliError(
        `cannot listen for AMQP on ${flags.host}:${flags.amqpPort}: ${reason(err)}` +
          ' (--amqp-port N picks another, 0 any free one, -1 turns AMQP off)',
        { cause: err },
      );
    }
  }

  // The CLI's own output, not the log: the password must not end up in
  // log storage. It is never shown again.
  let generated: string | null;
  try {
    generated = await auth.bootstrap();
  } catch (err) {
    // E.g. USHER_ADMIN_PASSWORD too short: nothing may listen without an admin.
    await amqp?.close();
    await app.close();
    await broker.close();
    throw new CliError(`cannot create the administrator: ${reason(err)}`, { cause: err });
  }
  if (generated !== null) {
    process.stderr.write(
      `usher: created user "admin" with password ${generated}\n` +
        'usher: it is shown only this once; change it with `usher user passwd admin`\n',
    );
  }

  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal; exiting without a clean close');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    try {
      await amqp?.close();
      await app.close();
      await broker.close();
      logger.info({}, 'usher stopped');
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };

  // Logged last: whoever waits for this line finds every listener up and
  // the signal handlers in place.
  process.on('SIGINT', (signal) => void stop(signal));
  process.on('SIGTERM', (signal) => void stop(signal));
  process.off('SIGHUP', hupWhileStarting);
  if (tls !== undefined && flags.tlsCert !== undefined && flags.tlsKey !== undefined) {
    const [certPath, keyPath] = [flags.tlsCert, flags.tlsKey];
    process.on('SIGHUP', () => {
      rereadTlsFiles(certPath, keyPath).then(
        (files) => {
          (app.server as unknown as TlsServer).setSecureContext(serverTlsOptions(files));
          amqp?.setTls(files);
          logger.info({ cert: certPath }, 'TLS certificate reloaded');
        },
        (err: unknown) =>
          logger.error({ err, cert: certPath }, 'TLS certificate not reloaded; the old one stays'),
      );
    });
  } else {
    // Node's default for SIGHUP ends the process; operators and log
    // rotators send it expecting a reload, so a broker without TLS stays up.
    process.on('SIGHUP', () => logger.info({}, 'SIGHUP: no TLS certificate to reload'));
  }
  const url = listeningUrl(app.server.address(), flags.host, tls !== undefined);
  logger.info(
    { url, dataDir: flags.data },
    `usher listening on ${url} (data ${flags.data})`,
  );
}

/** Admission thresholds from the flags; the broker's defaults fill in. */
function admissionSettings(flags: ServeFlags): Partial<AdmissionSettings> {
  const settings: Partial<AdmissionSettings> = {};
  if (flags.memoryBudget !== undefined) settings.memoryBudgetBytes = flags.memoryBudget;
  if (flags.pressureBacklog !== undefined) settings.pressureBacklog = flags.pressureBacklog;
  if (flags.queuePressureBacklog !== undefined) {
    settings.queuePressureBacklog = flags.queuePressureBacklog;
  }
  if (flags.criticalBacklog !== undefined) settings.criticalBacklog = flags.criticalBacklog;
  if (flags.pressureMinPriority !== undefined) {
    settings.pressureMinPriority = flags.pressureMinPriority;
  }
  if (flags.criticalMinPriority !== undefined) {
    settings.criticalMinPriority = flags.criticalMinPriority;
  }
  if (flags.eventLoopPressure !== undefined) {
    settings.eventLoopPressureMs = flags.eventLoopPressure;
  }
  if (flags.eventLoopCritical !== undefined) {
    settings.eventLoopCriticalMs = flags.eventLoopCritical;
  }
  return settings;
}

const CONFIG_KEYS: Record<string, (text: string) => number> = {
  memoryBudget: sizeFlag,
  diskFloor: sizeFlag,
  maxMessageSize: sizeFlag,
  pressureBacklog: intFlag(1),
  queuePressureBacklog: intFlag(1),
  criticalBacklog: intFlag(1),
  pressureMinPriority: intFlag(0, 10),
  criticalMinPriority: intFlag(0, 10),
  eventLoopPressure: durationFlag,
  eventLoopCritical: durationFlag,
};

/** `--config`: the limit and admission flags, parsed the same way. */
function readConfig(path: string | undefined): Partial<ServeFlags> {
  if (path === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CliError(`cannot read --config "${path}": ${reason(err)}`, { cause: err });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new CliError(`--config "${path}" must hold a JSON object`);
  }
  const config: Record<string, number> = {};
  for (const [key, value] of Object.entries(parsed)) {
    const parse = CONFIG_KEYS[key];
    if (parse === undefined) {
      throw new CliError(
        `--config "${path}": unknown setting "${key}"; ` +
          `known: ${Object.keys(CONFIG_KEYS).join(', ')}`,
      );
    }
    try {
      config[key] = parse(String(value));
    } catch (err) {
      throw new CliError(`--config "${path}": ${key} ${JSON.stringify(value)}: ${reason(err)}`);
    }
  }
  return config as Partial<ServeFlags>;
}

function definedOnly(flags: ServeFlags): ServeFlags {
  return Object.fromEntries(
    Object.entries(flags).filter(([, value]) => value !== undefined),
  ) as unknown as ServeFlags;
}

/** The URL clients use; IPv6 hosts get their brackets. */
function listeningUrl(
  address: ReturnType<import('node:net').Server['address']>,
  host: string,
  tls: boolean,
): string {
  const scheme = tls ? 'https' : 'http';
  if (address === null || typeof address === 'string') return `${scheme}://${host}`;
  const { family, port } = address;
  const shown = family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${scheme}://${shown}:${port}`;
}

/** `address already in use` rather than a stack trace. */
function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') return 'address already in use';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EADDRNOTAVAIL') return 'address not available on this machine';
  return err instanceof Error ? err.message : String(err);
}
