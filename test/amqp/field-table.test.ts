import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import { AmqpEncodeError, AmqpError } from '../../src/amqp/errors.js';
import {
  type FieldTable,
  type FieldValue,
  MAX_FIELD_DEPTH,
  MAX_TABLE_VALUES,
  TOO_MANY_ENTRIES,
  TOO_MANY_VALUES,
  type TableBudget,
  decodeTable,
  encodeTable,
  plainTable,
  readTable,
  tableFrom,
} from '../../src/amqp/field-table.js';
import { Reader } from '../../src/amqp/wire.js';
import { fieldTable } from './arbitraries.js';

/** A table's bytes, size prefix first, from hex with spaces and comments. */
function hex(text: string): Buffer {
  return Buffer.from(text.replace(/#.*$/gm, '').replace(/\s+/g, ''), 'hex');
}

function syntaxError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AmqpError);
    assert.equal(err.replyCode, 502);
    assert.equal(err.code, 'AMQP_SYNTAX_ERROR');
    assert.match(err.message, pattern);
    return true;
  });
}

test('every field type round-trips, nested, with its type kept', () => {
  fc.assert(
    fc.property(fieldTable, (table) => {
      assert.deepEqual(decodeTable(encodeTable(table)), table);
    }),
    { numRuns: 2000 },
  );
});

test('a decoded table is written back byte for byte', () => {
  fc.assert(
    fc.property(fieldTable, (table) => {
      const wire = encodeTable(table);
      assert.deepEqual(encodeTable(decodeTable(wire)), wire);
    }),
    { numRuns: 1000 },
  );
});

test('a table with one field of each type matches bytes written from the errata', () => {
  const wire = hex(`
    00000085                             # table size: 133 bytes follow
    01 74 74 01                          # "t" bool true
    01 62 62 ff                          # "b" int8 -1
    01 42 42 ff                          # "B" uint8 255
    01 73 73 ff fe                       # "s" int16 -2
    01 75 75 ff fe                       # "u" uint16 65534
    01 49 49 ff ff ff fd                 # "I" int32 -3
    01 69 69 ff ff ff fd                 # "i" uint32 4294967293
    01 6c 6c ff ff ff ff ff ff ff fc     # "l" int64 -4
    01 66 66 3f c0 00 00                 # "f" float 1.5
    01 64 64 c0 04 00 00 00 00 00 00     # "d" double -2.5
    01 44 44 02 00 00 30 39              # "D" decimal 123.45
    01 53 53 00 00 00 02 68 69           # "S" longstr "hi"
    01 78 78 00 00 00 02 00 ff           # "x" bytes 00 ff
    01 54 54 00 00 00 00 65 53 f1 00     # "T" timestamp 1700000000
    01 56 56                             # "V" void
    01 41 41 00 00 00 07                 # "A" array of 7 bytes:
       49 00 00 00 07  74 00             #   int32 7, bool false
    01 46 46 00 00 00 07                 # "F" table of 7 bytes:
       01 6b 53 00 00 00 00              #   "k" longstr ""
  `);
  const table: FieldTable = new Map<string, FieldValue>([
    ['t', { type: 't', value: true }],
    ['b', { type: 'b', value: -1 }],
    ['B', { type: 'B', value: 255 }],
    ['s', { type: 's', value: -2 }],
    ['u', { type: 'u', value: 65534 }],
    ['I', { type: 'I', value: -3 }],
    ['i', { type: 'i', value: 4294967293 }],
    ['l', { type: 'l', value: -4n }],
    ['f', { type: 'f', value: 1.5 }],
    ['d', { type: 'd', value: -2.5 }],
    ['D', { type: 'D', scale: 2, value: 12345 }],
    ['S', { type: 'S', value: 'hi' }],
    ['x', { type: 'x', value: Buffer.from([0, 0xff]) }],
    ['T', { type: 'T', value: 1700000000n }],
    ['V', { type: 'V', value: null }],
    [
      'A',
      {
        type: 'A',
        value: [
          { type: 'I', value: 7 },
          { type: 't', value: false },
        ],
      },
    ],
    ['F', { type: 'F', value: new Map([['k', { type: 'S', value: '' }]]) }],
  ]);
  assert.equal(wire.readUInt32BE(0), wire.length - 4);
  assert.deepEqual(encodeTable(table), wire);
  assert.deepEqual(decodeTable(wire), table);
});

test('x-death keeps its typed fields through decode and encode', () => {
  const death = new Map<string, FieldValue>([
    ['count', { type: 'l', value: 3n }],
    ['reason', { type: 'S', value: 'rejected' }],
    ['queue', { type: 'S', value: 'orders' }],
    ['time', { type: 'T', value: 1700000000n }],
    ['exchange', { type: 'S', value: '' }],
    ['routing-keys', { type: 'A', value: [{ type: 'S', value: 'orders' }] }],
  ]);
  const headers: FieldTable = new Map([
    ['x-death', { type: 'A', value: [{ type: 'F', value: death }] }],
  ]);
  const wire = encodeTable(headers);
  const back = decodeTable(wire);
  assert.deepEqual(back, headers);
  assert.deepEqual(encodeTable(back), wire);
});

test("'L' is read as a signed 64-bit 'l', as RabbitMQ does", () => {
  const wire = hex('0000000b 01 6e 4c ffffffffffffffff');
  assert.deepEqual(
    decodeTable(wire),
    new Map([['n', { type: 'l', value: -1n }]]),
  );
});

test('any non-zero bool octet is true', () => {
  assert.deepEqual(
    decodeTable(hex('00000004 01 62 74 07')),
    new Map([['b', { type: 't', value: true }]]),
  );
});

test('longstr bytes that are not UTF-8 stay bytes', () => {
  const table = decodeTable(hex('0000000a 01 6b 53 00000003 61 ff 62'));
  assert.deepEqual(table.get('k'), {
    type: 'S',
    value: Buffer.from([0x61, 0xff, 0x62]),
  });
});

test('a float NaN decodes as NaN', () => {
  const table = decodeTable(hex('00000007 01 6e 66 7fc00000'));
  const value = table.get('n');
  assert.ok(value?.type === 'f' && Number.isNaN(value.value));
});

test('a name given twice keeps its first value', () => {
  const table = decodeTable(hex('0000000b 01 6b 62 01  01 6b 62 02  01 6a 56'));
  assert.deepEqual(
    [...table],
    [
      ['k', { type: 'b', value: 1 }],
      ['j', { type: 'V', value: null }],
    ],
  );
});

test('decoded byte values are copies, not views of the input', () => {
  const wire = hex('00000011 01 78 78 00000002 abcd 01 53 53 00000001 ff');
  const table = decodeTable(wire);
  wire.fill(0);
  assert.deepEqual(table.get('x'), {
    type: 'x',
    value: Buffer.from([0xab, 0xcd]),
  });
  assert.deepEqual(table.get('S'), { type: 'S', value: Buffer.from([0xff]) });
});

function nestedArrays(depth: number): Buffer {
  // A table holding "a" = [[[...[]...]]]: each level is 'A' + u32 size.
  const table = Buffer.alloc(4 + 2 + 5 * depth);
  table.writeUInt32BE(2 + 5 * depth, 0);
  table[4] = 1;
  table[5] = 0x61;
  for (let level = 0; level < depth; level++) {
    const at = 6 + 5 * level;
    table[at] = 0x41;
    table.writeUInt32BE(5 * (depth - level - 1), at + 1);
  }
  return table;
}

test('nesting up to the limit decodes; one deeper is refused', () => {
  assert.equal(decodeTable(nestedArrays(MAX_FIELD_DEPTH)).size, 1);
  syntaxError(
    () => decodeTable(nestedArrays(MAX_FIELD_DEPTH + 1)),
    /nests deeper than 32/,
  );
});

test('a nesting bomb is refused without exhausting the stack', () => {
  syntaxError(
    () => decodeTable(nestedArrays(200_000)),
    /table\.a\[0\]\[0\].* nests deeper/,
  );
});

test('sizes past the end are refused before anything is read', () => {
  syntaxError(
    () => decodeTable(hex('ffffffff 01 61 56')),
    /needs 4294967295 bytes at offset 4, 3 left/,
  );
  syntaxError(
    () => decodeTable(hex('00000008 01 61 53 7fffffff 00')),
    /table\.a needs 2147483647 bytes/,
  );
  syntaxError(
    () => decodeTable(hex('00000007 01 61 41 00000009')),
    /table\.a needs 9 bytes/,
  );
  // The array claims 1 byte inside a table that ends right there.
  syntaxError(
    () => decodeTable(hex('00000007 01 61 41 00000001 56')),
    /needs 1 bytes at offset 11, 0 left/,
  );
});

test('bytes after a table are a SYNTAX_ERROR', () => {
  syntaxError(() => decodeTable(hex('00000000 56')), /1 bytes after the table/);
});

test('unknown field types are refused by name', () => {
  syntaxError(
    () => decodeTable(hex('00000004 01 61 55 00')),
    /table\.a has unknown field type 0x55 \('U'\)/,
  );
  syntaxError(
    () => decodeTable(hex('00000003 01 61 00')),
    /unknown field type 0x0/,
  );
});

// ---- budgets: how much of a table is read ------------------------------

/** A publisher's headers: 256 entries, 1024 values in all, then skipped. */
const SKIP_PAST_256: TableBudget = {
  entries: 256,
  values: MAX_TABLE_VALUES,
  over: 'skip',
};

/** `count` int32 entries "e0", "e1", ..., without a size prefix. */
function intEntries(count: number): Buffer {
  return Buffer.concat(
    Array.from({ length: count }, (_, i) => {
      const name = Buffer.from(`e${i}`);
      const value = Buffer.alloc(5);
      value[0] = 0x49;
      value.writeInt32BE(i, 1);
      return Buffer.concat([Buffer.from([name.length]), name, value]);
    }),
  );
}

/** `count` array items, each a void 'V'. */
const voidItems = (count: number) => Buffer.alloc(count, 0x56);

/**
 * Bytes no decoder can read: a table entry or array item of the unknown
 * type 'U'. Put where the budget ends, they prove it was not read past:
 * reading them is a SYNTAX_ERROR.
 */
const UNREADABLE_ENTRY = hex('01 7a 55');
const UNREADABLE_ITEM = hex('55');

/** `parts` with a u32 size prefix, as a table or an array is sent. */
function sized(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const size = Buffer.alloc(4);
  size.writeUInt32BE(body.length);
  return Buffer.concat([size, body]);
}

/** An entry named `name` holding an array of `items` bytes. */
const arrayEntry = (name: string, ...items: Buffer[]) =>
  Buffer.concat([Buffer.from([name.length]), Buffer.from(name), hex('41'), sized(...items)]);

/** Reads one table from `wire` followed by the byte 0x2a, within `budget`. */
function readBefore42(wire: Buffer, budget: TableBudget): FieldTable {
  const r = new Reader(Buffer.concat([wire, hex('2a')]));
  const table = readTable(r, 'headers', budget);
  assert.equal(r.u8('after'), 0x2a, 'the reader stands right after the table');
  assert.equal(r.left, 0);
  return table;
}

test('a table past its entries is read no further than the limit', () => {
  const poisoned = sized(intEntries(256), ...Array(5000).fill(UNREADABLE_ENTRY));
  // Read past the limit, the 257th entry is refused: nothing reads it here.
  syntaxError(() => decodeTable(poisoned), /unknown field type 0x55/);

  assert.equal(readBefore42(poisoned, SKIP_PAST_256), TOO_MANY_ENTRIES);
  const whole = readBefore42(sized(intEntries(256)), SKIP_PAST_256);
  assert.equal(whole.size, 256);
  assert.deepEqual(whole.get('e255'), { type: 'I', value: 255 });
});

test('a name sent twice counts twice toward the entries', () => {
  const twice = Buffer.concat(Array(257).fill(hex('01 61 56')));
  assert.equal(readBefore42(sized(twice), SKIP_PAST_256), TOO_MANY_ENTRIES);
});

test('values nested in arrays and tables count toward the values, and no more are read', () => {
  // One entry and 1023 items: 1024 values, the most a table may hold.
  const full = readBefore42(sized(arrayEntry('a', voidItems(1023))), SKIP_PAST_256);
  const array = full.get('a');
  assert.ok(array?.type === 'A' && array.value.length === 1023);

  const inArray = sized(arrayEntry('a', voidItems(1023), UNREADABLE_ITEM));
  syntaxError(() => decodeTable(inArray, { ...SKIP_PAST_256, values: Infinity }), /0x55/);
  assert.equal(readBefore42(inArray, SKIP_PAST_256), TOO_MANY_VALUES);

  // x-death's shape: an array of tables. 1 entry, then 255 tables of 4
  // values (the item and its 3 entries): 1021. The 256th table reaches
  // 1024 at its second entry, and its third is not read.
  const death = Buffer.concat([hex('46'), sized(hex('01 63 56  01 71 56  01 72 56'))]);
  const cutInside = Buffer.concat([hex('46'), sized(hex('01 63 56  01 71 56'), UNREADABLE_ENTRY)]);
  const deaths = sized(
    arrayEntry('x-death', ...Array(255).fill(death), cutInside, ...Array(84).fill(death)),
  );
  syntaxError(() => decodeTable(deaths, { ...SKIP_PAST_256, values: Infinity }), /0x55/);
  assert.equal(readBefore42(deaths, SKIP_PAST_256), TOO_MANY_VALUES);
});

test('method tables past 1024 entries or values are a SYNTAX_ERROR, read no further', () => {
  assert.equal(decodeTable(sized(intEntries(MAX_TABLE_VALUES))).size, MAX_TABLE_VALUES);
  syntaxError(
    () => decodeTable(sized(intEntries(MAX_TABLE_VALUES), UNREADABLE_ENTRY)),
    /^table has more than 1024 entries$/,
  );
  syntaxError(
    () => decodeTable(sized(arrayEntry('a', voidItems(1023), UNREADABLE_ITEM))),
    /^table holds more than 1024 values, nested ones included$/,
  );
});

test('out-of-range values are refused on encode with their path', () => {
  const cases: [FieldValue, RegExp][] = [
    [{ type: 'b', value: 128 }, /\[-128, 127\], got 128/],
    [{ type: 'u', value: -1 }, /\[0, 65535\], got -1/],
    [{ type: 'I', value: 1.5 }, /got 1.5/],
    [{ type: 'l', value: 2n ** 63n }, /expected a bigint/],
    [{ type: 'T', value: -1n }, /expected a bigint/],
    [{ type: 'D', scale: 256, value: 1 }, /t\.x\.scale/],
    [{ type: 'x', value: 'text' as unknown as Buffer }, /expected a Buffer/],
    [{ type: 't', value: 1 } as unknown as FieldValue, /expected a boolean/],
    [{ type: 'f', value: '1' } as unknown as FieldValue, /expected a number/],
    [{ type: 'A', value: {} } as unknown as FieldValue, /must be an Array/],
    [{ type: 'S', value: 1 } as unknown as FieldValue, /a string or a Buffer/],
    [{ type: 'Q' } as unknown as FieldValue, /unknown field type "Q"/],
  ];
  for (const [value, pattern] of cases) {
    const table = new Map([
      ['t', { type: 'F', value: new Map([['x', value]]) } as FieldValue],
    ]);
    assert.throws(
      () => encodeTable(table),
      (err: unknown) => {
        assert.ok(err instanceof AmqpEncodeError);
        assert.equal(err.code, 'AMQP_UNENCODABLE');
        assert.match(err.message, /table\.t\.x/);
        assert.match(err.message, pattern);
        return true;
      },
    );
  }
});

test('a field name over 255 bytes is refused on encode', () => {
  const table = new Map([
    ['é'.repeat(128), { type: 'V', value: null } as FieldValue],
  ]);
  assert.throws(
    () => encodeTable(table),
    /shortstr is 256 bytes, the limit is 255/,
  );
});

test('a table that contains itself is refused on encode', () => {
  const table = new Map<string, FieldValue>();
  table.set('self', { type: 'F', value: table });
  assert.throws(() => encodeTable(table), /nests deeper than 32 levels/);
});

test('tableFrom types plain values the way clients do', () => {
  const table = tableFrom({
    flag: true,
    small: 10,
    big: 2 ** 40,
    unsafe: 2 ** 60,
    ratio: 0.5,
    huge: 2n ** 62n,
    name: 'orders',
    raw: Buffer.from([1]),
    when: new Date(1_700_000_000_500),
    none: null,
    list: [1, 'a'],
    nested: { x: 1 },
  });
  assert.deepEqual(
    [...table].map(([k, v]) => [k, v.type]),
    [
      ['flag', 't'],
      ['small', 'I'],
      ['big', 'l'],
      ['unsafe', 'd'],
      ['ratio', 'd'],
      ['huge', 'l'],
      ['name', 'S'],
      ['raw', 'x'],
      ['when', 'T'],
      ['none', 'V'],
      ['list', 'A'],
      ['nested', 'F'],
    ],
  );
  assert.deepEqual(table.get('when'), { type: 'T', value: 1_700_000_000n });
  assert.deepEqual(table.get('big'), { type: 'l', value: 2n ** 40n });
});

test('plainTable drops the wire types and keeps __proto__ as a key', () => {
  const table = decodeTable(
    encodeTable(
      tableFrom({
        n: 1,
        d: [{ count: 2n }],
        ['__proto__']: 'x',
      }),
    ),
  );
  const plain = plainTable(table);
  assert.equal(Object.getPrototypeOf(plain), null);
  assert.equal(plain.n, 1);
  assert.equal(plain['__proto__'], 'x');
  assert.deepEqual(
    JSON.parse(
      JSON.stringify(plain.d, (_k, v) =>
        typeof v === 'bigint' ? String(v) : v,
      ),
    ),
    [{ count: '2' }],
  );
  const decimal = decodeTable(hex('00000008 01 61 44 02 00000096'));
  assert.equal(plainTable(decimal).a, 1.5);
});
