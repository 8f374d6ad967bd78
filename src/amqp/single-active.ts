// x-single-active-consumer: of a queue's consumers only the first
// registered gets deliveries; the others wait in line, and when the active
// one cancels or its channel goes, the next in line takes over (RabbitMQ's
// semantics). The channel asks `isActive` before granting credit.

interface Waiting {
  key: object;
  wake(): void;
}

export class SingleActiveConsumers {
  /** Per queue, its consumers in arrival order; the first is active. */
  private readonly lines = new Map<string, Waiting[]>();

  join(queue: string, key: object, wake: () => void): void {
    const line = this.lines.get(queue) ?? [];
    line.push({ key, wake });
    this.lines.set(queue, line);
  }

  isActive(queue: string, key: object): boolean {
    const line = this.lines.get(queue);
    return line === undefined || line[0]?.key === key;
  }

  /** `key` leaves the line; if it was active, the next one is woken. */
  leave(queue: string, key: object): void {
    const line = this.lines.get(queue);
    if (line === undefined) return;
    const at = line.findIndex((waiting) => waiting.key === key);
    if (at < 0) return;
    line.splice(at, 1);
    if (line.length === 0) this.lines.delete(queue);
    else if (at === 0) line[0].wake();
  }

  queueDeleted(queue: string): void {
    this.lines.delete(queue);
  }
}
