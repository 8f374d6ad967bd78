// JSON schemas of every HTTP request and answer (docs/http-api.md). Fastify
// validates requests and serialises answers with them, and openapi.ts
// builds GET /openapi.json from the same objects, so the three cannot drift.
//
// Bounds follow the broker's own checks (src/broker/settings.ts), which
// stay authoritative. Checking them here as well names the field in the
// request, including its place in a batch, and refuses numbers such as
// 1e300 that JSON carries and that pass as integers.

import { Type, type Static, type TSchema } from 'typebox';

import { MAX_DURATION_MS, MAX_TTL_MS } from '../broker/settings.js';
import { DEATH_REASONS, MAX_PRIORITY, MIN_PRIORITY } from '../engine/types.js';

/** The longest time to live, as the broker allows: fourteen days. */
export const MAX_BATCH = 1000;
export const MAX_RECEIVE = 1000;
export const MAX_WAIT_MS = 20_000;
export const MAX_PEEK = 1000;
export const DEFAULT_PEEK = 100;

const Duration = (
  description: string,
  minimum = 0,
  maximum = MAX_DURATION_MS,
) => Type.Integer({ minimum, maximum, description });

const Ttl = (description: string) => Duration(description, 1, MAX_TTL_MS);

const Count = (description: string) =>
  Type.Integer({ minimum: 0, description });

const EpochMs = (description: string) =>
  Type.Integer({ minimum: 0, description });

const Nullable = <T extends TSchema>(schema: T) =>
  Type.Union([schema, Type.Null()]);

const Strict = { additionalProperties: false } as const;

// The broker checks the characters and says which are allowed.
export const QueueName = Type.String({
  minLength: 1,
  maxLength: 255,
  description:
    'queue name: 1 to 255 bytes of UTF-8 without control characters, other ' +
    'than "." and ".."; percent-encoded in paths',
});

export const QueueParams = Type.Object({ name: QueueName }, Strict);

// Queues ------------------------------------------------------------------

export const Backoff = Type.Object(
  {
    initialMs: Duration('delay before the first retry'),
    multiplier: Type.Number({ minimum: 1, maximum: 100 }),
    maxMs: Duration('no retry waits longer than this'),
    jitter: Type.Number({ minimum: 0, maximum: 1 }),
  },
  { ...Strict, description: 'retry backoff' },
);

const settingsProperties = {
  fifo: Type.Boolean({ description: 'strict order within message groups' }),
  maxAttempts: Type.Integer({
    minimum: 0,
    maximum: 1_000_000,
    description: 'deliveries before dead-lettering; 0 = unlimited',
  }),
  backoff: Backoff,
  visibilityTimeoutMs: Duration('lease length of a receive', 1),
  deadLetter: Nullable(QueueName),
  messageTtlMs: Nullable(Ttl('default time to live')),
  dedupWindowMs: Duration('a repeated message id is stored once within this'),
  dedupMaxIds: Type.Integer({
    minimum: 1,
    maximum: 10_000_000,
    description: 'most ids the dedup window remembers, the newest',
  }),
  durability: Type.Union(
    [Type.Literal('fsync'), Type.Literal('os'), Type.Literal('memory')],
    {
      description:
        'fsync: confirm once on disk; os: once written to the OS; ' +
        'memory: never written, gone at restart',
    },
  ),
  maxLength: Nullable(Type.Integer({
    minimum: 0,
    maximum: Number.MAX_SAFE_INTEGER,
    description: 'most waiting (ready or delayed) messages; null = no limit',
  })),
  maxBytes: Nullable(Type.Integer({
    minimum: 0,
    maximum: Number.MAX_SAFE_INTEGER,
    description: 'most body bytes of waiting messages; null = no limit',
  })),
  overflow: Type.Union(
    [
      Type.Literal('reject-publish'),
      Type.Literal('reject-publish-dlx'),
      Type.Literal('drop-oldest'),
      Type.Literal('reject-lowest-priority'),
    ],
    { description: 'what a publish past maxLength or maxBytes does' },
  ),
  sheddable: Type.Boolean({ description: 'refused first when the broker is under pressure' }),
};

export const QueueSettings = Type.Object(settingsProperties, {
  ...Strict,
  description: 'queue settings',
});

export const QueueSettingsInput = Type.Object(
  {
    ...Type.Partial(Type.Object(settingsProperties)).properties,
    backoff: Type.Optional(Type.Partial(Backoff, Strict)),
  },
  { ...Strict, description: 'queue settings; anything left out is default' },
);

export const QueueStats = Type.Object({
  ready: Count('deliverable now'),
  inFlight: Count('leased, waiting for ack or nack'),
  delayed: Count('waiting for a delay or retry backoff'),
  total: Count('ready + inFlight + delayed'),
  bytes: Count('body bytes of every message in the queue'),
  published: Count('messages published since the broker started'),
  delivered: Count('deliveries'),
  acked: Count('acks'),
  nacked: Count('nacks'),
  leaseExpired: Count('leases that ran out'),
  deadLettered: Count('messages moved to the dead-letter queue'),
  expired: Count('messages whose time to live ran out'),
  dropped: Count('dead messages with no dead-letter queue'),
  duplicates: Count('publishes refused as duplicates'),
  overflowed: Count('waiting messages displaced by the overflow policy'),
  refused: Count('publishes refused by maxLength or maxBytes'),
  oldestReadyAgeMs: Count('age of the oldest ready message'),
});

export const QueueInfo = Type.Object({
  name: QueueName,
  settings: QueueSettings,
  stats: QueueStats,
  deadLetterSources: Type.Array(QueueName),
});

export const QueueList = Type.Object({ queues: Type.Array(QueueInfo) });

export const Purged = Type.Object({ purged: Count('messages removed') });

export const RedriveRequest = Type.Object(
  {
    to: Type.Optional(QueueName),
    max: Type.Optional(Type.Integer({ minimum: 1 })),
    ids: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 1000 }),
    ),
    // One of the reasons a message dies for (DeathReason): a misspelt
    // one matched nothing and moved nothing, with a 200.
    reason: Type.Optional(Type.Union(DEATH_REASONS.map((reason) => Type.Literal(reason)))),
    source: Type.Optional(QueueName),
    anyQueue: Type.Optional(
      Type.Boolean({
        description:
          'move the messages of a queue no queue dead-letters into (live work, maybe); ' +
          'refused with 409 NOT_DEAD_LETTER_QUEUE otherwise',
      }),
    ),
  },
  Strict,
);

export const Redriven = Type.Object({ moved: Count('messages moved') });

// Messages ----------------------------------------------------------------

const Headers = Type.Record(Type.String(), Type.String());

const MessageId = Type.String({ minLength: 1, maxLength: 256 });
const Receipt = Type.String({ minLength: 1, maxLength: 256 });

const AnyBody = Type.Unknown({
  description:
    'a string is its UTF-8 text; any other JSON value is its JSON text',
});

const Base64Body = Type.String({ description: 'raw bytes, base64' });

export const PublishMessage = Type.Object(
  {
    body: Type.Optional(AnyBody),
    bodyBase64: Type.Optional(Base64Body),
    id: Type.Optional(MessageId),
    headers: Type.Optional(Headers),
    priority: Type.Optional(
      Type.Integer({ minimum: MIN_PRIORITY, maximum: MAX_PRIORITY }),
    ),
    group: Type.Optional(Nullable(Type.String({ maxLength: 256 }))),
    delayMs: Type.Optional(Duration('not deliverable before this')),
    ttlMs: Type.Optional(Ttl('time to live')),
  },
  {
    ...Strict,
    description: 'a message to publish; exactly one of body and bodyBase64',
    // Also quoted to a client that sent something else than an object.
    examples: [{ body: { ticket: 'TCKT-1' } }],
  },
);

export const PublishBatch = Type.Object(
  {
    messages: Type.Array(PublishMessage, {
      minItems: 1,
      maxItems: MAX_BATCH,
    }),
  },
  { ...Strict, examples: [{ messages: [{ body: 'a' }, { body: 'b' }] }] },
);

export const PublishResult = Type.Object({
  id: MessageId,
  duplicate: Type.Boolean(),
});

export const PublishResults = Type.Object({
  results: Type.Array(PublishResult),
});

export const ReceiveRequest = Type.Object(
  {
    max: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_RECEIVE, default: 1 }),
    ),
    waitMs: Type.Optional(
      Type.Integer({ minimum: 0, maximum: MAX_WAIT_MS, default: 0 }),
    ),
    visibilityTimeoutMs: Type.Optional(Duration('lease length', 1)),
  },
  Strict,
);

export const ReceivedMessage = Type.Object({
  id: MessageId,
  queue: QueueName,
  receipt: Receipt,
  body: Type.Optional(AnyBody),
  bodyBase64: Type.Optional(Base64Body),
  headers: Headers,
  priority: Type.Integer(),
  group: Nullable(Type.String()),
  attempt: Type.Integer({ minimum: 1 }),
  redelivered: Type.Boolean(),
  publishedAt: EpochMs('publish time'),
  leaseDeadline: EpochMs('redelivered after this unless settled'),
});

export const Received = Type.Object({
  messages: Type.Array(ReceivedMessage),
});

export const PeekQuery = Type.Object(
  {
    limit: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_PEEK, default: DEFAULT_PEEK }),
    ),
    offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  },
  Strict,
);

export const PeekedMessage = Type.Object({
  id: MessageId,
  body: Type.Optional(AnyBody),
  bodyBase64: Type.Optional(Base64Body),
  headers: Headers,
  priority: Type.Integer(),
  group: Nullable(Type.String()),
  state: Type.Union([
    Type.Literal('ready'),
    Type.Literal('delayed'),
    Type.Literal('in-flight'),
  ]),
  failures: Count('deliveries that ended without an ack'),
  publishedAt: EpochMs('publish time'),
  availableAt: EpochMs('not deliverable before this'),
  expiresAt: Nullable(EpochMs('expires after this')),
});

export const Peeked = Type.Object({ messages: Type.Array(PeekedMessage) });

export const AckRequest = Type.Object(
  {
    receipt: Type.Optional(Receipt),
    receipts: Type.Optional(
      Type.Array(Receipt, { minItems: 1, maxItems: MAX_BATCH }),
    ),
  },
  { ...Strict, description: 'exactly one of receipt and receipts' },
);

export const Acked = Type.Object({
  acked: Count('receipts settled'),
  results: Type.Array(Type.Boolean()),
});

export const NackRequest = Type.Object(
  {
    receipt: Receipt,
    requeue: Type.Optional(Type.Boolean()),
    delayMs: Type.Optional(Duration('retry after this')),
    reason: Type.Optional(
      Type.String({ description: 'kept with the message, cut at 1024' }),
    ),
  },
  Strict,
);

export const Ok = Type.Object({ ok: Type.Literal(true) });

export const Nacked = Type.Object({
  ok: Type.Literal(true),
  outcome: Type.Union(
    [Type.Literal('retried'), Type.Literal('dead-lettered'), Type.Literal('dropped')],
    {
      description:
        'retried later, or dead and then dead-lettered or dropped (no dead-letter queue)',
    },
  ),
  reason: Type.Optional(
    Type.String({ description: 'why it died: rejected, max-attempts or expired' }),
  ),
});

export const ExtendRequest = Type.Object(
  {
    receipt: Receipt,
    timeoutMs: Duration('lease runs out this long from now', 1),
  },
  Strict,
);

export const ReleaseRequest = Type.Object(
  { receipts: Type.Array(Receipt, { minItems: 1, maxItems: MAX_BATCH }) },
  Strict,
);

export const Released = Type.Object({
  released: Count('leases handed back'),
});

export const Extended = Type.Object({
  leaseDeadline: EpochMs('new lease deadline'),
});

// System ------------------------------------------------------------------

export const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
  uptimeMs: Count('since the broker opened'),
  queues: Count('queues'),
  store: Type.Record(Type.String(), Type.Number()),
  admission: Type.Optional(
    Type.Object({
      level: Type.Union([
        Type.Literal('normal'),
        Type.Literal('pressure'),
        Type.Literal('critical'),
      ]),
      reason: Type.String({ description: 'signal that set the level; none at normal' }),
      since: EpochMs('when the level last changed'),
      refused: Count('publishes refused by admission control'),
      rssBytes: Count('process RSS at the last sample'),
      memoryBudgetBytes: Nullable(Count('--memory-budget; null when not set')),
      backlog: Count('waiting messages over all queues at the last sample'),
      eventLoopDelayMs: Count('event-loop delay (p99) of the last sample'),
    }, { description: 'admission control (graceful degradation)' }),
  ),
  listeners: Type.Optional(Type.Object({
    amqp: Type.Optional(Type.Integer({ description: 'AMQP 0-9-1 port' })),
    amqps: Type.Optional(Type.Integer({ description: 'AMQP 0-9-1 over TLS port' })),
  }, { description: 'the ports the other protocols listen on, on the same host' })),
});

export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String({ description: 'stable code, see docs/errors.md' }),
    message: Type.String(),
    field: Type.Optional(Type.String()),
    level: Type.Optional(Type.String({ description: 'QUEUE_FULL, OVERLOADED: admission level' })),
    reason: Type.Optional(Type.String({ description: 'QUEUE_FULL, OVERLOADED: why refused' })),
  }),
});

/** Names for components/schemas in the OpenAPI document. */
export const NAMED_SCHEMAS: ReadonlyArray<readonly [string, TSchema]> = [
  ['QueueSettings', QueueSettings],
  ['QueueSettingsInput', QueueSettingsInput],
  ['QueueStats', QueueStats],
  ['QueueInfo', QueueInfo],
  ['PublishMessage', PublishMessage],
  ['PublishResult', PublishResult],
  ['ReceivedMessage', ReceivedMessage],
  ['PeekedMessage', PeekedMessage],
  ['Error', ErrorBody],
];

export type QueueParams = Static<typeof QueueParams>;
export type QueueSettingsInput = Static<typeof QueueSettingsInput>;
export type RedriveRequest = Static<typeof RedriveRequest>;
export type PublishMessage = Static<typeof PublishMessage>;
export type PublishBatch = Static<typeof PublishBatch>;
export type ReceiveRequest = Static<typeof ReceiveRequest>;
export type PeekQuery = Static<typeof PeekQuery>;
export type AckRequest = Static<typeof AckRequest>;
export type NackRequest = Static<typeof NackRequest>;
export type ExtendRequest = Static<typeof ExtendRequest>;
export type ReleaseRequest = Static<typeof ReleaseRequest>;
