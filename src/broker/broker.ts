// The broker: owns the queues and the log, turns API calls into engine
// operations plus log records, and runs the one timer that drives delays,
// lease expiry and TTL. A publish is answered only after its record is on
// disk, and only then becomes deliverable, so nothing unconfirmed is ever
// handed to a consumer.
//
// This file is the public face and keeps what every part shares: the
// state, opening and closing, outcomes and the log writes. The parts live
// beside it: publish-landing.ts (publishing), consumers.ts (handing
// messages out), settling.ts (acks, nacks), queues.ts (a queue as a
// whole) and due-timer.ts (the timer).

import { join } from 'node:path';
import type { Logger } from 'pino';

import {
  BrokerClosedError,
  QueueNotFoundError,
  type ReceiptNotFoundError,
  StoreUnavailableError,
  UsherError,
} from '../errors.js';
import { HOT_MEMORY_BYTES, HotMemory } from '../engine/hot-memory.js';
import { QueueEngine, type Outcome } from '../engine/queue.js';
import type { QueueSettings } from '../engine/types.js';
import type { CheckpointOptions } from '../storage/checkpoint.js';
import { type DamagedMessage, LogStore } from '../storage/log-store.js';
import type { StoreIo } from '../storage/io.js';
import type { LogRecord, PublishedRecord } from '../storage/records.js';
import { observationsOf, recordPublishRefused } from '../observe/observations.js';
import { freeBytesOf } from './checks.js';
import {
  AdmissionController,
  DEFAULT_ADMISSION,
  processSignals,
  type AdmissionSettings,
  type Signals,
} from './admission.js';
import { ClockWatch } from './clock-watch.js';
import { Consumers, type Waiter } from './consumers.js';
import { repairOrDrop } from './damage.js';
import { maybeDeliveredUpTo, raiseMark } from './crash-marks.js';
import { DataLock } from './data-lock.js';
import type { DeadLetterRouter } from './dead-letter.js';
import { DeadLettering } from './dead-lettering.js';
import { DiskWatch } from './disk-watch.js';
import { DueTimer } from './due-timer.js';
import { isLogged, needsSync, noteLanded, publishedRecord } from './durability.js';
import { readBack } from './messages.js';
import { PublishLanding } from './publish-landing.js';
import { Queues } from './queues.js';
import { RECENT_ID_LIMITS, ReplayState, recentIdsToKeep } from './recovery.js';
import { rebuildMessages } from './rebuild.js';
import { resolveSettings } from './settings.js';
import { Settling } from './settling.js';
import type {
  AckOptions,
  BrokerApi,
  NackOptions,
  NackResult,
  PeekedMessage,
  PublishAnswer,
  PublishInput,
  PublishResult,
  QueueInfo,
  QueueSettingsInput,
  ReceiveOptions,
  ReceivedMessage,
  RedriveOptions,
  Subscriber,
  Subscription,
} from './types.js';

export interface BrokerOptions {
  dataDir: string;
  logger: Logger;
  /** Roll the log to a new segment past this size (default 64 MiB). */
  segmentBytes?: number;
  /** Largest message body accepted (default 16 MiB). */
  maxMessageBytes?: number;
  /** false confirms after write() instead of fdatasync (tests, `os` mode). */
  sync?: boolean;
  clock?: () => number;
  random?: () => number;
  /** The log's file operations; tests inject disk faults here. */
  storeIo?: StoreIo;
  /** When the log writes checkpoints (storage/checkpoint.ts); default on. */
  checkpoints?: CheckpointOptions;
  /** Below this much free disk, publishes are refused (default 100 MiB). */
  diskFloorBytes?: number;
  /** Free bytes on the data folder's disk; tests pass their own. */
  freeDiskBytes?: (dir: string) => Promise<number>;
  /** Turns admission control on (`usher serve` always does); thresholds
   * left out take DEFAULT_ADMISSION. */
  admission?: Partial<AdmissionSettings>;
  /** Replaces measured signals, so tests can drive the levels. */
  signals?: Partial<Signals>;
  /** Ready messages a queue keeps in memory before the rest stay on disk
   * (default HOT_READY_LIMIT) unless hotMemoryBytes has room; tests make
   * it small. */
  hotReadyLimit?: number;
  /** What waiting messages of all queues may hold in memory before a
   * queue past its own window keeps new ones on disk only (default
   * HOT_MEMORY_BYTES; 0: no queue holds more than its window). */
  hotMemoryBytes?: number;
}

export const DEFAULT_DISK_FLOOR_BYTES = 100 * 1024 * 1024;

export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Cold pages (up to 256 messages each) all queues bring in at one run of runDue. */
const COLD_PAGES_PER_RUN = 8;
const STORE_FAILURE_MEMORY_MS = 30_000;

export class Broker implements BrokerApi {
  private readonly engines = new Map<string, QueueEngine>();
  private readonly waiters = new Map<QueueEngine, Waiter[]>();
  private readonly subscribers = new Map<QueueEngine, Subscriber[]>();
  /** Queues whose delete is being written (queues.ts): see snapshot(). */
  private readonly deleting = new Map<QueueEngine, Promise<void>>();
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly maxMessageBytes: number;
  private readonly startedAt: number;
  private readonly receiptBase: number;
  private readonly hotReadyLimit: number | undefined;
  private readonly hotMemory: HotMemory;
  private store!: LogStore;
  private lock: DataLock | null = null;
  /** Messages up to this seq may have been delivered before a crash (crash-marks.ts). */
  private maybeDeliveredUpTo = 0;
  /** The log's folder, where that mark is kept. */
  private logDir = '';
  private closing = false;
  private storeFailedAt: number | null = null;
  private readonly diskFloorBytes: number;
  private disk!: DiskWatch;
  /** Connections, refusals, latency: see src/observe/observations.ts. */
  private readonly observed = observationsOf(this);
  private clockWatch: ClockWatch | null = null;
  /** Null unless BrokerOptions.admission turned it on. */
  admission: AdmissionController | null = null;
  private closeSignals: (() => void) | null = null;
  private deadLetterRouter: DeadLetterRouter | null = null;
  private queueDeletedListener: ((name: string) => void) | null = null;
  private readonly deadLettering: DeadLettering;
  private readonly publishing: PublishLanding;
  private readonly consumers: Consumers;
  private readonly settling: Settling;
  private readonly queues: Queues;
  private readonly dueTimer: DueTimer;

  private constructor(
    private readonly logger: Logger,
    options: BrokerOptions,
  ) {
    this.clock = options.clock ?? Date.now;
    this.random = options.random ?? Math.random;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.startedAt = this.clock();
    // Receipts name the boot time in microseconds before their delivery
    // count, so a receipt handed out before a restart never names a lease
    // after it.
    this.receiptBase = this.startedAt * 1000;
    this.diskFloorBytes = options.diskFloorBytes ?? DEFAULT_DISK_FLOOR_BYTES;
    this.hotReadyLimit = options.hotReadyLimit;
    this.hotMemory = new HotMemory(options.hotMemoryBytes ?? HOT_MEMORY_BYTES);
    this.deadLettering = new DeadLettering({
      engines: this.engines,
      deleting: this.deleting,
      newEngine: (name, settings) => this.newEngine(name, settings),
      allocateSeq: () => this.store.allocateSeq(),
      router: () => this.deadLetterRouter,
      clock: () => this.clock(),
      appendMoves: (engine, touched, records) => this.appendMoves(engine, touched, records),
      afterChange: (engine) => this.afterChange(engine),
      observed: this.observed,
      logger,
    });

    // What the parts in other files use of the broker. The store, the
    // disk watch and admission come as open() goes on: asked for when used.
    const parts = {
      engines: this.engines,
      waiters: this.waiters,
      subscribers: this.subscribers,
      deleting: this.deleting,
      publishesWriting: (engine: QueueEngine) => this.publishing.writingSeqs(engine),
      deadLettersHeld: (engine: QueueEngine) => this.deadLettering.heldSeqs(engine),
      observed: this.observed,
      logger,
      clock: () => this.clock(),
      maxMessageBytes: this.maxMessageBytes,
      store: () => this.store,
      disk: () => this.disk,
      admission: () => this.admission,
      maybeDeliveredUpTo: () => this.maybeDeliveredUpTo,
      deadLetterRouter: () => this.deadLetterRouter,
      queueDeleted: (name: string) => this.queueDeletedListener?.(name),
      newEngine: (name: string, settings: QueueSettings) => this.newEngine(name, settings),
      deadLettering: this.deadLettering,
      checkOpen: () => this.checkOpen(),
      engineOf: (name: string, field?: string) => this.engineOf(name, field),
      storeError: (err: unknown) => this.storeError(err),
      afterChange: (engine: QueueEngine) => this.afterChange(engine),
      arm: (at: number | null) => this.dueTimer.arm(at),
      closing: () => this.closing,
      runDue: () => this.runDue(),
      append: (engine: QueueEngine, records: LogRecord[], synced?: boolean) =>
        this.append(engine, records, synced),
      appendMoves: (
        engine: QueueEngine,
        touched: Iterable<QueueEngine>,
        records: LogRecord[],
      ) => this.appendMoves(engine, touched, records),
      settleOutcomes: (
        engine: QueueEngine,
        now: number,
        error?: string,
        dropped?: Set<Outcome>,
      ) => this.settleOutcomes(engine, now, error, dropped),
    };
    this.publishing = new PublishLanding(parts);
    this.consumers = new Consumers(parts);
    this.settling = new Settling(parts);
    this.queues = new Queues(parts);
    this.dueTimer = new DueTimer(parts);
  }

  /** Opens the log in `dataDir`, replays it and rebuilds every queue. */
  static async open(options: BrokerOptions): Promise<Broker> {
    const logger = options.logger;
    const broker = new Broker(logger, options);
    const replay = new ReplayState();
    const began = Date.now();

    broker.lock = DataLock.acquire(options.dataDir);
    broker.logDir = join(options.dataDir, 'log');
    try {
      await broker.openStore(options, replay);
    } catch (err) {
      broker.lock.releaseAfterFailedStart();
      throw err;
    }
    try {
      broker.maybeDeliveredUpTo = await maybeDeliveredUpTo(broker.logDir,
        broker.lock.tookOverStale, broker.store.lastSeq, logger);
    } catch (err) {
      await broker.store.close();
      broker.lock.releaseAfterFailedStart();
      throw err;
    }
    broker.disk = await DiskWatch.start(options.dataDir, broker.diskFloorBytes,
      options.freeDiskBytes ?? freeBytesOf, (low) => broker.store.setDiskLow(low), logger);
    broker.clockWatch = new ClockWatch(broker.clock,
      (jumpMs) => broker.dueTimer.onClockJump(jumpMs));
    if (options.admission !== undefined) broker.startAdmission(options);

    if (broker.lock.tookOverStale) broker.logCrashRecovery(replay);
    logger.info(
      {
        queues: broker.engines.size,
        messages: replay.messages,
        records: replay.records,
        ms: Date.now() - began,
      },
      'recovered',
    );
    return broker;
  }

  /**
   * A lock its broker never released means that run did not stop cleanly
   * (SIGKILL, OOM kill, power loss: data-lock.ts). Said once, with what
   * recovery found, for the operator who wonders why consumers now see
   * redeliveries: the store's own lines tell of each torn tail or damaged
   * stretch, but not that they come from a crash.
   */
  private logCrashRecovery(replay: ReplayState): void {
    const store = this.store.stats();
    this.logger.warn(
      {
        restoredMessages: replay.messages,
        // All of them: the mark is now at least the crashed run's last
        // seq, and no live message has a higher one (crash-marks.ts).
        maybeDelivered: replay.messages,
        maybeDeliveredUpToSeq: this.maybeDeliveredUpTo,
        replayedRecords: store.replayedRecords,
        fromCheckpoint: store.openedFromCheckpoint === 1,
        tornTailsCut: store.corruptTails,
        corruptRegions: store.corruptRegions,
        missingSegments: store.missingSegments,
      },
      'the previous run did not stop cleanly (it left its lock): recovered from the log, ' +
        'every message restored comes back marked redelivered',
    );
  }

  private async openStore(options: BrokerOptions, replay: ReplayState): Promise<void> {
    this.store = await LogStore.open(
      {
        dir: this.logDir,
        segmentBytes: options.segmentBytes,
        sync: options.sync ?? true,
        logger: this.logger,
        snapshotMessage: (seq) => this.snapshot(seq),
        io: options.storeIo,
        // Replay keeps no bodies (recovery.ts), only their sizes.
        copyReplayedBodies: false,
        checkpoints: options.checkpoints ?? {},
        recentIds: RECENT_ID_LIMITS,
        onDamagedMessages: (messages) => this.repairOrDropDamaged(messages),
      },
      (record) => replay.apply(record),
    );
    this.rebuild(replay);
  }

  private rebuild(replay: ReplayState): void {
    const now = this.clock();

    for (const [name, logged] of this.store.queues) {
      this.engines.set(name, this.newEngine(name, this.loggedSettings(name, { ...logged })));
    }
    // As they were: a queue held over its limit is trimmed by its next
    // newcomer, not by the restart (QueueContents.restoring).
    for (const engine of this.engines.values()) engine.restoring(true);
    replay.messages = rebuildMessages(this.store, this.engines, now, this.logger);
    for (const engine of this.engines.values()) engine.restoring(false);
    for (const { queue, id, publishedAt } of recentIdsToKeep(this.store, now)) {
      this.engines.get(queue)?.rememberId(id, publishedAt);
    }
    for (const engine of this.engines.values()) this.afterChange(engine);
  }

  /** Live messages a scrub found damaged: repaired or dropped (damage.ts). */
  private repairOrDropDamaged(messages: DamagedMessage[]): void {
    const { touched, records, afterDelete } =
      repairOrDrop(messages, this.engines, this.deleting, this.logger);
    let written = messages.length;
    for (const waiting of afterDelete.values()) written -= waiting.length;
    if (written > 0) {
      this.store.append(records).catch((err: unknown) => {
        // The next scrub finds them again.
        this.logger.error({ err, messages: written }, 'could not log damaged messages');
      });
    }
    // Woken after the append, as in settleOutcomes: a subscriber may take
    // a repaired message at once and find its TTL past, and the dead
    // letter's record must follow the repair's, or a restart brings it
    // back (test/fault/scrub-restart.test.ts).
    for (const engine of touched) this.afterChange(engine);
    for (const [engine, waiting] of afterDelete) {
      // A delete that landed ended them in the log; one refused left them
      // its queue's, to be repaired or dropped now.
      const again = () => {
        if (!this.closing && this.engines.get(engine.name) === engine) {
          this.repairOrDropDamaged(waiting);
        }
      };
      void this.deleting.get(engine)?.then(again, again);
    }
  }

  private startAdmission(options: BrokerOptions): void {
    const measured = processSignals({
      freeDiskBytes: () => this.disk.freeBytes,
      backlog: () => this.backlog(),
    });
    this.closeSignals = measured.close;
    const settings = {
      ...DEFAULT_ADMISSION,
      diskFloorBytes: this.diskFloorBytes,
      ...options.admission,
    };
    this.admission = new AdmissionController(
      settings,
      { ...measured, ...options.signals },
      this.clock,
    );
    this.admission.onChange((level, reason) => {
      const signals = this.admission?.stats().signals;
      this.logger.warn({ level, reason, ...signals }, 'admission level changed');
    });
    this.admission.start();
  }

  /** Waiting messages over every queue, and running publish/ack totals. */
  backlog(): { waiting: number; published: number; acked: number } {
    let waiting = 0;
    let published = 0;
    let acked = 0;
    for (const engine of this.engines.values()) {
      waiting += engine.counts.ready + engine.counts.delayed;
      published += engine.totals.published;
      acked += engine.totals.acked;
    }
    return { waiting, published, acked };
  }

  private loggedSettings(name: string, logged: Record<string, unknown>): QueueSettings {
    try {
      return resolveSettings(name, logged as QueueSettingsInput);
    } catch (err) {
      this.logger.error(
        { err, queue: name },
        'logged queue settings invalid; using defaults',
      );
      return resolveSettings(name, {});
    }
  }

  private newEngine(name: string, settings: QueueSettings): QueueEngine {
    return new QueueEngine(name, settings, {
      random: this.random,
      receiptBase: this.receiptBase,
      // Bodies of a durable queue's backlog stay on disk (issue #3).
      pageIn: (seqs) => readBack(this.store, seqs),
      readAhead: (seqs) => void this.store.readAhead(seqs),
      hotReadyLimit: this.hotReadyLimit,
      hotMemory: this.hotMemory,
    });
  }

  // --- queues ---------------------------------------------------------

  /** Declares a queue, or changes only the settings named (queues.ts). */
  createQueue(
    name: string,
    input: QueueSettingsInput,
    options?: { onlyNew?: boolean; shortLived?: boolean },
  ): Promise<{ created: boolean; updated: boolean; queue: QueueInfo }> {
    return this.queues.createQueue(name, input, options);
  }

  listQueues(): QueueInfo[] {
    return [...this.engines.values()]
      .map((engine) => this.queues.info(engine))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  hasQueue(name: string): boolean {
    return this.engines.has(name);
  }

  /** The current settings of a queue, without computing its stats. */
  settingsOf(name: string): QueueSettings {
    return this.engineOf(name).settings;
  }

  getQueue(name: string): QueueInfo {
    return this.queues.info(this.engineOf(name));
  }

  purgeQueue(name: string): Promise<{ purged: number }> {
    return this.queues.purgeQueue(name);
  }

  /** Deletes a queue, telling whoever waits on it (queues.ts). */
  deleteQueue(name: string, options?: { shortLived?: boolean }): Promise<void> {
    return this.queues.deleteQueue(name, options);
  }

  // --- publishing -----------------------------------------------------

  /** Publishes a batch whole: one refusal (load, limits) refuses it all. */
  async publish(queue: string, inputs: PublishInput[]): Promise<PublishResult[]> {
    try {
      return (await this.publishing.publishBatch(queue, inputs, true)) as PublishResult[];
    } catch (err) {
      if (err instanceof UsherError) recordPublishRefused(this, err.code);
      throw err;
    }
  }

  /**
   * Publishes each message on its own: a message refused under load or by
   * the queue's limits comes back as its error, the others are stored. For
   * AMQP, where a batch is only many independent publishes.
   */
  publishEach(queue: string, inputs: PublishInput[]): Promise<PublishAnswer[]> {
    // `inputs` are read only before this returns, so the caller may let go
    // of them and their bodies then. Not async: an async function keeps
    // its arguments until it ends, after the batch lands.
    let landing: Promise<PublishAnswer[]>;
    try {
      landing = this.publishing.publishBatch(queue, inputs, false);
    } catch (err) {
      landing = Promise.reject(err);
    }
    return landing.then((answers) => {
      for (const answer of answers) {
        if (answer instanceof UsherError) recordPublishRefused(this, answer.code);
      }
      return answers;
    }, (err: unknown) => {
      if (err instanceof UsherError) recordPublishRefused(this, err.code);
      throw err;
    });
  }

  // --- consuming ------------------------------------------------------

  /** Takes what is ready, or waits up to `waitMs` (consumers.ts). */
  receive(queue: string, options: ReceiveOptions): Promise<ReceivedMessage[]> {
    return this.consumers.receive(queue, options);
  }

  ack(queue: string, receipts: string[], options?: AckOptions): Promise<boolean[]> {
    return this.settling.ack(queue, receipts, options);
  }

  /** Several receipts of one queue nacked as one change (settling.ts). */
  nackMany(queue: string, receipts: readonly string[], options: NackOptions): Promise<void> {
    return this.settling.nackMany(queue, receipts, options);
  }

  nack(queue: string, receipt: string, options: NackOptions): Promise<NackResult> {
    return this.settling.nack(queue, receipt, options);
  }

  release(queue: string, receipts: string[]): number {
    return this.settling.release(queue, receipts);
  }

  extend(queue: string, receipt: string, timeoutMs: number): Promise<number> {
    return this.settling.extend(queue, receipt, timeoutMs);
  }

  notLeased(queue: string, receipt: string): ReceiptNotFoundError {
    return this.settling.notLeased(queue, receipt);
  }

  subscribe(queue: string, subscriber: Subscriber): Subscription {
    return this.consumers.subscribe(queue, subscriber);
  }

  // --- dead letters ---------------------------------------------------

  /** Lets a protocol adapter route its queues' dead letters (AMQP). */
  routeDeadLetters(router: DeadLetterRouter | null): void {
    this.deadLetterRouter = router;
  }

  /**
   * Told of every queue deleted, whoever asked: AMQP keeps bindings and
   * queue arguments (x-expires, exclusive) by queue name, and a queue
   * deleted over HTTP must not leave them to a new queue of that name.
   */
  onQueueDeleted(listener: ((name: string) => void) | null): void {
    this.queueDeletedListener = listener;
  }

  /** A queue's messages from `offset` on, left where they are (queues.ts). */
  peek(queue: string, options: { limit: number; offset: number }): PeekedMessage[] {
    return this.queues.peek(queue, options);
  }

  /** Moves a queue's messages to where they died, or to `options.to` (queues.ts). */
  redrive(
    queue: string,
    options: RedriveOptions,
    checkDestination?: (queue: string) => void,
  ): Promise<{ moved: number }> {
    return this.queues.redrive(queue, options, checkDestination);
  }

  // --- outcomes and the timer -----------------------------------------

  /**
   * Persists what the engine decided and wakes whoever it concerns. Dead
   * outcomes that found nowhere to go are added to `dropped`. Dead
   * letters that wait for their dead-letter queue's delete are waited
   * for too (dead-lettering.ts), so that a nack answers once its dead
   * letter is logged.
   */
  private settleOutcomes(
    engine: QueueEngine,
    now: number,
    error?: string,
    dropped?: Set<Outcome>,
  ): Promise<void> {
    const touched = new Set<QueueEngine>([engine]);
    const held: Promise<void>[] = [];
    const records = this.deadLettering.records(engine, now, error, touched, dropped, held);
    // Appended before the queues are woken: a full drop-oldest queue a
    // dead letter went into may displace it at once (it keeps its seq,
    // the lowest there), and that record must follow its move, or a
    // restart brings it back (test/broker/moved-in-displaced.test.ts).
    const written =
      records.length > 0 ? this.appendMoves(engine, touched, records) : Promise.resolve();
    for (const queue of touched) this.afterChange(queue);
    return held.length === 0 ? written : Promise.all([written, ...held]).then(() => {});
  }

  /** Serves long polls, logs pending outcomes and re-arms the timer. */
  private afterChange(engine: QueueEngine): void {
    this.consumers.serveWaiters(engine);
    if (engine.hasOutcomes()) {
      this.settleOutcomes(engine, this.clock()).catch((err: unknown) => {
        this.logger.error({ err, queue: engine.name }, 'could not log queue changes');
      });
    }
    this.dueTimer.arm(engine.nextWakeAt());
  }

  /** Runs whatever is due by the clock now: delays, leases, TTL. Tests with
   * a manual clock call this after moving the clock. */
  runDue(): void {
    const now = this.clock();
    // Shared by all queues: 20 queues expiring 20,000 cold messages each
    // at once, 64 pages a queue, held the event loop for 2.7 s (breaker
    // session). Past it, a queue's next pages come at the next timer.
    const coldPages = { left: COLD_PAGES_PER_RUN };
    for (const engine of this.engines.values()) {
      engine.tick(now, coldPages);
      this.afterChange(engine);
    }
  }

  private snapshot(seq: number): PublishedRecord | undefined {
    for (const engine of this.engines.values()) {
      // A queue whose delete is being written: its `settled` records may
      // be on the way, ahead of any copy made now.
      if (this.deleting.has(engine)) {
        if (engine.has(seq)) return undefined;
        continue;
      }
      const message = engine.find(seq);
      if (message === undefined) continue;
      // Moved into a memory queue: its `settled` record is on the way.
      return isLogged(engine) ? publishedRecord(engine.name, message) : undefined;
    }
    return undefined;
  }

  // --- the rest -------------------------------------------------------

  /** Degraded while the log refuses writes, or did within the last 30 s. */
  health() {
    const store = this.store.stats();
    const recentFailure =
      this.storeFailedAt !== null &&
      this.clock() - this.storeFailedAt < STORE_FAILURE_MEMORY_MS;
    return {
      status:
        store.stopped === 1 || recentFailure || this.disk.low
          ? ('degraded' as const)
          : ('ok' as const),
      uptimeMs: this.clock() - this.startedAt,
      queues: this.engines.size,
      store: {
        ...store,
        freeDiskBytes: Number.isFinite(this.disk.freeBytes) ? this.disk.freeBytes : -1,
        diskFloorBytes: this.disk.floorBytes,
        diskSizeBytes: this.disk.sizeBytes,
      },
      ...(this.admission === null ? {} : { admission: this.admissionHealth() }),
    };
  }

  /** Starts a scrub of every sealed log segment (storage/scrub.ts); false if one runs. */
  scrub(): boolean {
    this.checkOpen();
    return this.store.scrub();
  }

  admissionStats() {
    return this.admission?.stats() ?? null;
  }

  storeBatchTimes() {
    return this.store.batchTimes;
  }

  private admissionHealth() {
    const stats = (this.admission as AdmissionController).stats();
    return {
      level: stats.level,
      reason: stats.reason,
      since: stats.since,
      refused: stats.refused.pressure + stats.refused.critical,
      rssBytes: stats.signals.rssBytes,
      memoryBudgetBytes: stats.signals.memoryBudgetBytes,
      backlog: stats.signals.backlog,
      eventLoopDelayMs: Math.round(stats.signals.eventLoopDelayMs),
    };
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.dueTimer.stop();
    this.disk.stop();
    this.clockWatch?.stop();
    this.admission?.stop();
    this.closeSignals?.();
    for (const queueWaiters of this.waiters.values()) {
      for (const waiter of [...queueWaiters]) {
        waiter.cleanup();
        waiter.resolve([]);
      }
    }
    this.waiters.clear();
    await this.markLeasedAsDelivered();
    await this.store.close();
    this.lock?.release();
    this.logger.info({}, 'broker closed');
  }

  /**
   * Messages consumers hold at a clean stop come back redelivered after
   * it (crash-marks.ts): leases are not logged, and without this one held
   * over HTTP came back as never delivered. Not saved: logged and
   * forgotten, as a crash would have left them.
   */
  private async markLeasedAsDelivered(): Promise<void> {
    let leased = 0;
    for (const engine of this.engines.values()) {
      leased = Math.max(leased, engine.highestLeasedSeq());
    }
    if (leased <= this.maybeDeliveredUpTo) return;
    try {
      await raiseMark(this.logDir, leased);
      this.maybeDeliveredUpTo = leased;
    } catch (err) {
      this.logger.warn({ err }, 'messages held at the stop will not come back as redelivered');
    }
  }

  private engineOf(name: string, field = 'queue'): QueueEngine {
    const engine = this.engines.get(name);
    if (engine === undefined) throw new QueueNotFoundError(String(name), field);
    return engine;
  }

  private checkOpen(): void {
    if (this.closing) throw new BrokerClosedError();
  }

  private storeError(err: unknown): UsherError {
    if (err instanceof StoreUnavailableError) this.storeFailedAt = this.clock();
    if (err instanceof UsherError) return err;
    this.storeFailedAt = this.clock();
    return new StoreUnavailableError('the message store could not write to disk', err);
  }

  /** Logs changes to `engine`'s messages, as its durability says (synced: AckOptions). */
  private append(engine: QueueEngine, records: LogRecord[], synced = true): Promise<void> {
    if (!isLogged(engine)) return Promise.resolve();
    return this.appendMoves(engine, [engine], records, synced);
  }

  /** Logs changes touching several queues: synced if any one wants it. */
  private async appendMoves(
    engine: QueueEngine,
    touched: Iterable<QueueEngine>,
    records: LogRecord[],
    synced = true,
  ): Promise<void> {
    if (records.length === 0) return;
    try {
      // Not synced (AckOptions): nobody hears an answer to it either.
      await this.store.append(records, {
        sync: synced && needsSync([engine, ...touched]),
        unanswered: !synced,
      });
    } catch (err) {
      throw this.storeError(err);
    }
    noteLanded(this.engines, engine, records);
  }
}
