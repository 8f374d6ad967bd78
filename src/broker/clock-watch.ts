// Notices when the wall clock jumps. The broker's timer is a setTimeout,
// which counts monotonic time, armed for the wall-clock moment the next
// delay, lease or expiry falls due. If the wall clock then jumps forward
// (NTP step, a VM resumed), messages fall due at once but the timer still
// waits its old span, up to an hour; a jump backward leaves the timer
// firing early, which is harmless. So once a second the two clocks are
// compared, and a drift of more than two seconds between them is reported.
//
// TODO(#3): lease deadlines are wall-clock times too, so a jump backward
// keeps a dead consumer's messages leased for as long as the jump. Leases
// are not logged, so they could run on monotonic time instead.

import { performance } from 'node:perf_hooks';

const CHECK_MS = 1000;
const JUMP_MS = 2000;

export class ClockWatch {
  private readonly timer: NodeJS.Timeout;
  private lastWall: number;
  private lastMonotonic = performance.now();

  /** `onJump` gets how far the wall clock moved beyond monotonic time. */
  constructor(
    private readonly clock: () => number,
    onJump: (jumpMs: number) => void,
  ) {
    this.lastWall = clock();
    this.timer = setInterval(() => {
      const wall = this.clock();
      const monotonic = performance.now();
      const jump = wall - this.lastWall - (monotonic - this.lastMonotonic);
      this.lastWall = wall;
      this.lastMonotonic = monotonic;
      if (Math.abs(jump) > JUMP_MS) onJump(Math.round(jump));
    }, CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
