/**
 * The name a file is shown and downloaded under, the same wherever it is
 * decided: by the server for a plain upload (core/attachments.ts), by the SDK
 * for an encrypted one, whose real name only the members' devices see
 * (client/e2e/files.ts), on sending and again on reading. Browser-safe.
 */

const NAME_UNSAFE = /[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

/** Longest file name, in characters. */
export const MAX_FILE_NAME_CHARS = 255;

/**
 * The last part of what was given (no folders), without control and
 * bidirectional-override characters (which can make "exe.txt" read as
 * "txt.exe"), at most 255 characters; "file" when nothing is left.
 */
export function fileName(raw: string | undefined): string {
  let n = (raw ?? '').normalize('NFC');
  n = n.slice(Math.max(n.lastIndexOf('/'), n.lastIndexOf('\\')) + 1);
  n = n.replace(NAME_UNSAFE, '').replace(/\p{Cs}/gu, '\ufffd').trim();
  n = Array.from(n).slice(0, MAX_FILE_NAME_CHARS).join('').trim();
  return n === '' || n === '.' || n === '..' ? 'file' : n;
}
