// Small files rewritten whole (exchanges.json, amqp-queues.json): write a
// temporary file, fsync it, rename it over the old one, fsync the folder,
// so a crash leaves either the old file or the new one, never half.

import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';

export async function writeAtomically(path: string, text: string): Promise<void> {
  const temporary = `${path}.tmp`;
  const file = await open(temporary, 'w');
  try {
    await file.writeFile(text);
    await file.datasync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
  const folder = await open(join(path, '..'), 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}
