// How the server's V8 collects its young generation. Called once by
// `usher serve`, before the broker starts.
//
// By default V8 runs each scavenge (young-generation collection) as a job
// on its worker threads as well as the main thread, and the main thread
// waits until every helper that joined is done. The broker allocates a
// few KB a message, so at 5,000 msg/s it scavenges twice a second, and
// each scavenge woke V8's helper threads about nine times (counted by
// test/util/young-gc.test.ts). On a machine whose cores are busy with
// other work a woken helper waits for a core, and the main thread,
// holding every delivery and confirm, waits for it. Measured under load
// 9.5 on 2 cores (bench:amqp --only latency --usher-only, two interleaved
// runs each, scavenges inside the 8 s run): in parallel a scavenge took
// 7.5 / 6.8 ms at the median and 98 / 132 ms at worst, 289 / 383 ms in
// all; on the main thread alone 1.5 / 1.8 ms, 4.6 / 15 ms at worst, 36 /
// 51 ms in all.
//
// TODO(#4): not measured on an idle machine (there was none), where one
// thread may take somewhat longer per scavenge than several. The young
// generation's live part is small (messages in flight), so it should be
// little.

import v8 from 'node:v8';

/** Makes every later scavenge run on the calling (main) thread alone. */
export function scavengeOnMainThread(): void {
  // Node keeps V8's flags writable after start (no freeze-flags-after-
  // init), and V8 reads this one at each scavenge.
  v8.setFlagsFromString('--no-parallel-scavenge');
}
