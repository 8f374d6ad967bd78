// What every socket double of the AMQP connection tests shares: reading
// paused and resumed as a net.Socket's is, and corking, which they need
// not model (a corked write is taken as any other).

import { EventEmitter } from 'node:events';

export class PausableSocketDouble extends EventEmitter {
  private paused = false;

  cork(): void {}

  uncork(): void {}

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    this.paused = false;
    return this;
  }

  isPaused(): boolean {
    return this.paused;
  }
}
