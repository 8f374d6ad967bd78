// TICKET_PURCHASED events as the ticketing service emits them, in the
// format of /work/shared/examples/ticket-purchased.json: one per buyer, with
// distinct ticket, user, seat and payment ids, and a few malformed ones
// (chosen deterministically) that no service can ever process.

import { chance, pick } from './random.js';

export interface TicketPurchased {
  event: 'TICKET_PURCHASED';
  /** ISO 8601 to the second, e.g. `2025-10-06T14:32:00Z`. */
  timestamp: string;
  data: {
    ticket_id: string;
    event_id: string;
    event_name: string;
    user: { user_id: string; name: string; email?: string };
    seat?: { section: string; row: string; seat_number: string };
    price: { amount: number; currency: string };
    payment: { transaction_id: string; status: string; method: string };
  };
}

/** How a malformed purchase is broken; each breaks every service. */
export type Defect = 'missing-email' | 'missing-seat' | 'missing-payment-id';

export interface Purchase {
  ticketId: string;
  /** The event as JSON text, the exact bytes published. */
  json: string;
  /** Set on the few purchases that can never be processed. */
  defect: Defect | null;
}

const DEFECTS: readonly Defect[] = [
  'missing-email',
  'missing-seat',
  'missing-payment-id',
];
const SEATS_PER_ROW = 50;
const ROWS_PER_SECTION = 40;
/** Cheaper seats further from the stage. */
const PRICE_BY_SECTION = [89, 69, 49, 25];
const FIRST_NAMES = [
  'Jane', 'Omar', 'Li', 'Sofia', 'Kwame', 'Ines', 'Mateo', 'Aiko', 'Noah',
  'Priya', 'Lucas', 'Zoe', 'Ivan', 'Amara', 'Elias', 'Mina',
];
const LAST_NAMES = [
  'Roe', 'Haddad', 'Chen', 'Rossi', 'Mensah', 'Dubois', 'Garcia', 'Sato',
  'Novak', 'Iyer', 'Martin', 'Keller', 'Petrov', 'Okafor', 'Berg', 'Laurent',
];
const METHODS = ['Credit Card', 'Debit Card', 'PayPal', 'Apple Pay'];
const SALE_OPENS = Date.parse('2025-10-06T14:32:00Z');

/**
 * How many malformed purchases a run of `buyers` has: a handful, growing
 * slowly with the run, never more than there are buyers.
 */
export function malformedCount(buyers: number): number {
  return Math.min(buyers, Math.max(3, Math.min(9, Math.round(buyers / 1000))));
}

/**
 * Buyer indexes of the malformed purchases, spread evenly over the run so
 * that they arrive while everything else is flowing.
 */
export function malformedIndexes(buyers: number): Map<number, Defect> {
  const count = malformedCount(buyers);
  const chosen = new Map<number, Defect>();
  for (let k = 0; k < count; k++) {
    const index = Math.floor(((k + 0.5) * buyers) / count);
    chosen.set(index, DEFECTS[k % DEFECTS.length]);
  }
  return chosen;
}

/** The ticket id of buyer `index` (0-based); distinct for every index. */
export function ticketIdOf(index: number): string {
  return `TCKT-${100_000 + index}`;
}

/** Every purchase of a run, in the order the buyers checked out. */
export function generatePurchases(buyers: number, seed: number): Purchase[] {
  const defects = malformedIndexes(buyers);
  const purchases: Purchase[] = [];
  for (let index = 0; index < buyers; index++) {
    const defect = defects.get(index) ?? null;
    const event = purchaseEvent(index, seed);
    if (defect !== null) breakEvent(event, defect);
    purchases.push({
      ticketId: event.data.ticket_id,
      json: render(event),
      defect,
    });
  }
  return purchases;
}

/** The event of buyer `index`, well formed. */
export function purchaseEvent(index: number, seed: number): TicketPurchased {
  const first = pick(FIRST_NAMES, seed, index, 1);
  const last = pick(LAST_NAMES, seed, index, 2);

  // Seats are handed out in order: seat, then row, then section, so no two
  // buyers share one however many there are.
  const seatIndex = index % SEATS_PER_ROW;
  const rowIndex = Math.floor(index / SEATS_PER_ROW) % ROWS_PER_SECTION;
  const sectionIndex = Math.floor(index / (SEATS_PER_ROW * ROWS_PER_SECTION));
  const tier = Math.min(sectionIndex, PRICE_BY_SECTION.length - 1);
  const amount = PRICE_BY_SECTION[tier];
  // Most pay by card; the rest spread over the other methods.
  const method =
    chance(seed, index, 3) < 0.6 ? METHODS[0] : pick(METHODS, seed, index, 4);

  // A spike: about fifty checkouts a second once the sale opens.
  const at = new Date(SALE_OPENS + index * 20);
  return {
    event: 'TICKET_PURCHASED',
    timestamp: at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    data: {
      ticket_id: ticketIdOf(index),
      event_id: 'EVT-12345',
      event_name: 'Jazz World Tour 2025 - Marseille',
      user: {
        user_id: `USR-${10_000 + index}`,
        name: `${first} ${last}`,
        email: `${first}.${last}.${index}@example.com`.toLowerCase(),
      },
      seat: {
        section: sectionName(sectionIndex),
        row: String(rowIndex + 1),
        seat_number: String(seatIndex + 1),
      },
      price: { amount, currency: 'EUR' },
      payment: {
        transaction_id: `PAY-${900_000 + index}`,
        status: 'SUCCESS',
        method,
      },
    },
  };
}

/**
 * Why a purchase cannot be processed, or null when it can. Every service
 * checks the whole event: none acts on a purchase that is missing part of
 * itself, so a malformed purchase is dead-lettered by all three.
 */
export function checkPurchase(body: unknown): string | null {
  const event = body as Partial<TicketPurchased> | null;
  if (event === null || typeof event !== 'object') {
    return 'body is not a JSON object';
  }
  if (event.event !== 'TICKET_PURCHASED') {
    return `unexpected event ${JSON.stringify(event.event)}`;
  }

  const data = event.data;
  if (!data || typeof data.ticket_id !== 'string') {
    return 'data.ticket_id is missing';
  }
  const email = data.user?.email;
  if (typeof email !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(email)) {
    return `${data.ticket_id}: data.user.email is missing or invalid`;
  }
  const seat = data.seat;
  if (!seat || !seat.section || !seat.row || !seat.seat_number) {
    return `${data.ticket_id}: data.seat is missing`;
  }
  if (!data.payment?.transaction_id) {
    return `${data.ticket_id}: data.payment.transaction_id is missing`;
  }
  if (typeof data.price?.amount !== 'number' || data.price.amount <= 0) {
    return `${data.ticket_id}: data.price.amount is not a positive number`;
  }
  return null;
}

function breakEvent(event: TicketPurchased, defect: Defect): void {
  if (defect === 'missing-email') delete event.data.user.email;
  else if (defect === 'missing-seat') delete event.data.seat;
  else event.data.payment.transaction_id = '';
}

/**
 * Compact JSON, with the price written with two decimals as in the
 * example (`25.00`): JSON.stringify would write `25`.
 */
function render(event: TicketPurchased): string {
  const amount = event.data.price.amount.toFixed(2);
  return JSON.stringify(event).replace(/"amount":[0-9.]+/, `"amount":${amount}`);
}

/** A, B, ... Z, AA, AB, ... */
function sectionName(index: number): string {
  let name = '';
  for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26)) {
    name = String.fromCharCode(65 + ((n - 1) % 26)) + name;
  }
  return name;
}
