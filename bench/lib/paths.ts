import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/** The repository root (bench/lib/ is two levels down). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
