/**
 * Which media types may be attached (PARLEY_ATTACHMENT_TYPES), which of them
 * the server decodes as images, and which a browser may show inline when
 * served from this origin. Pure and browser-safe: the web client checks a
 * file against the server's list (GET /v1/attachments/limits) with the same
 * TypePolicy before uploading it.
 */

/** What PARLEY_ATTACHMENT_TYPES holds unless the operator says otherwise: media, documents and archives people send in chats. */
export const DEFAULT_ATTACHMENT_TYPES = [
  'image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif', 'image/heic', 'image/heif',
  'video/mp4', 'video/webm', 'video/quicktime',
  'audio/mpeg', 'audio/mp4', 'audio/aac', 'audio/ogg', 'audio/webm', 'audio/wav', 'audio/x-wav',
  'application/pdf', 'text/plain', 'text/csv', 'text/markdown', 'application/rtf', 'application/json',
  'application/zip', 'application/x-zip-compressed', 'application/gzip', 'application/x-7z-compressed',
  'application/msword', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.ms-excel', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'application/vnd.ms-powerpoint', 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  'application/vnd.oasis.opendocument.text', 'application/vnd.oasis.opendocument.spreadsheet', 'application/vnd.oasis.opendocument.presentation',
].join(',');

const TOKEN = "[a-z0-9!#$&^_.+-]+";
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}$`);
const PATTERN = new RegExp(`^(${TOKEN}/${TOKEN}|${TOKEN}/\\*|\\*/\\*)$`);

/**
 * The media type of a Content-Type header, lower-case and without parameters
 * (`Image/PNG; charset=x` → `image/png`); undefined when there is none or it
 * is not of the form type/subtype.
 */
export function mediaTypeOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const t = (header.split(';')[0] ?? '').trim().toLowerCase();
  return MEDIA_TYPE.test(t) ? t : undefined;
}

/** A list of exact types and `type/*` patterns; `*\/*` allows anything. */
export class TypePolicy {
  private readonly exact = new Set<string>();
  private readonly families = new Set<string>();
  private any = false;
  /** The entries as given, lower-case. */
  readonly list: string[] = [];

  /** Throws on an entry that is not a media type or pattern, naming it. */
  constructor(list: string) {
    for (const raw of list.split(',')) {
      const t = raw.trim().toLowerCase();
      if (!t) continue;
      if (!PATTERN.test(t)) throw new Error(`PARLEY_ATTACHMENT_TYPES: "${raw.trim()}" is not a media type such as image/png or image/*`);
      this.list.push(t);
      if (t === '*/*') this.any = true;
      else if (t.endsWith('/*')) this.families.add(t.slice(0, -2));
      else this.exact.add(t);
    }
  }

  allows(type: string): boolean {
    return this.any || this.exact.has(type) || this.families.has(type.slice(0, type.indexOf('/')));
  }
}

/** Image formats the server decodes (sharp), checks, measures and thumbnails, with the type each is served as. */
export const DECODED_IMAGES: Readonly<Record<string, string>> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  webp: 'image/webp',
  heif: 'image/avif',
};

/** Types a file is decoded as an image for: a file claiming one of these that does not decode is refused. */
export function claimsDecodedImage(type: string): boolean {
  return type === 'image/jpeg' || type === 'image/png' || type === 'image/gif' || type === 'image/webp' || type === 'image/avif';
}

/**
 * Whether a browser may render a file of this type in place when it is
 * served from the app's origin: images it decodes itself (not SVG, which runs
 * script), audio, video, PDF and plain text. Anything else (HTML, SVG, XML,
 * scripts, unknown types) goes out as a download, so it can never run as a
 * page of this origin.
 */
export function servedInline(type: string): boolean {
  if (claimsDecodedImage(type)) return true;
  if (type.startsWith('video/') || type.startsWith('audio/')) return true;
  return type === 'application/pdf' || type === 'text/plain';
}
