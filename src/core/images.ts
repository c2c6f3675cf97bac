/**
 * What the server does with an uploaded image (R14), through sharp (libvips,
 * on libuv's thread pool, so the event loop stays free): decode it whole,
 * which is the proof that it is the image it claims to be; measure it as it
 * is displayed (EXIF rotation applied); make a WebP thumbnail of at most
 * 320×320 in the same pass; and, when it carries EXIF, XMP or IPTC metadata
 * (camera, time, GPS position), write a copy without it, rotated as the
 * metadata said, for serving instead of the original.
 *
 * At most two images are processed at once per node: decoding a large photo
 * takes a few hundred megabytes for a moment, and uploads are rare next to
 * messages, so they may queue.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import sharp from 'sharp';
import type { Metadata, OutputInfo, Sharp } from 'sharp';
import { DECODED_IMAGES } from '../protocol/media-types.js';
import { badRequest } from './errors.js';

/** Thumbnails fit in a square of this side. */
export const THUMBNAIL_PX = 320;
/** Images with more pixels than this are refused (a 12,000 × 8,000 photo is 96 million). */
export const MAX_IMAGE_PIXELS = 100_000_000;
const CONCURRENT = 2;

export interface ImageFacts {
  /** The format it really is, as a media type. */
  type: string;
  width: number;
  height: number;
  thumbnail: { data: Buffer; width: number; height: number };
  /** A copy without metadata, when the original had some: serve this one. */
  stripped?: { path: string; size: number; sha256: string };
}

let running = 0;
const waiting: (() => void)[] = [];

async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= CONCURRENT) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

const open = (path: string, animated = false): Sharp =>
  // failOn 'error': corrupt or truncated pixel data fails the decode, as it would show broken.
  sharp(path, { failOn: 'error', limitInputPixels: MAX_IMAGE_PIXELS, animated });

/**
 * Decodes the image at `path` (uploaded as `claimed`); throws bad_request
 * when it is not a whole image of a format served as an image. `strippedPath`
 * is where a copy without metadata goes, if one is needed.
 */
export function inspectImage(path: string, claimed: string, strippedPath: string): Promise<ImageFacts> {
  return slot(async () => {
    const what = claimed.slice('image/'.length).toUpperCase();
    let meta: Metadata;
    try {
      meta = await open(path).metadata();
    } catch {
      throw badRequest(`The file is not a valid ${what} image.`);
    }
    const type = meta.format === 'heif' && meta.compression !== 'av1' ? undefined : DECODED_IMAGES[meta.format ?? ''];
    if (!type) throw badRequest(`The file is not a valid ${what} image.`);
    if ((meta.width ?? 0) * (meta.height ?? 0) > MAX_IMAGE_PIXELS) {
      throw badRequest(`The image has more than ${MAX_IMAGE_PIXELS / 1_000_000} million pixels.`);
    }
    let thumb: { data: Buffer; info: OutputInfo };
    try {
      thumb = await open(path)
        .rotate()
        .resize(THUMBNAIL_PX, THUMBNAIL_PX, { fit: 'inside', withoutEnlargement: true })
        .webp({ quality: 75 })
        .toBuffer({ resolveWithObject: true });
    } catch {
      throw badRequest(`The file is not a valid ${what} image (it does not decode whole).`);
    }
    const shown = meta.autoOrient ?? { width: meta.width ?? 0, height: meta.height ?? 0 };
    const facts: ImageFacts = {
      type,
      width: shown.width,
      height: shown.height,
      thumbnail: { data: thumb.data, width: thumb.info.width, height: thumb.info.height },
    };
    if (meta.exif || meta.xmp || meta.iptc) facts.stripped = await strip(path, meta, strippedPath);
    return facts;
  });
}

/** Re-encodes without metadata (sharp keeps none unless told), rotated upright, colour profile kept. */
async function strip(path: string, meta: Metadata, out: string): Promise<{ path: string; size: number; sha256: string }> {
  const animated = (meta.pages ?? 1) > 1;
  let img = open(path, animated).rotate().keepIccProfile();
  switch (meta.format) {
    case 'jpeg':
      img = img.jpeg({ quality: 92, chromaSubsampling: meta.chromaSubsampling === '4:4:4' ? '4:4:4' : '4:2:0' });
      break;
    case 'png':
      img = img.png();
      break;
    case 'webp':
      img = img.webp({ quality: 90 });
      break;
    case 'gif':
      img = img.gif();
      break;
    default:
      img = img.avif({ quality: 70 });
  }
  await img.toFile(out);
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(out)) hash.update(chunk as Buffer);
  return { path: out, size: (await stat(out)).size, sha256: hash.digest('hex') };
}
