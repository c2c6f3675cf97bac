/** What a client reads when a frame or request fails its schema: TypeBox's words, made plain where they are not. */
import type { TSchema } from '@sinclair/typebox';
import { ValueErrorType } from '@sinclair/typebox/errors';
import { NO_NUL } from '../protocol/fields.js';

interface SchemaError {
  type: ValueErrorType;
  message: string;
  schema: TSchema;
  path: string;
}

export function explainSchemaError(e: SchemaError | undefined): string {
  if (!e) return 'invalid';
  const schema = e.schema as { anyOf?: { const?: unknown }[]; pattern?: string; patternProperties?: Record<string, unknown> };
  // A field of a few allowed values says which ("Expected "admin" or "member"").
  if (schema.anyOf?.length && schema.anyOf.every((s) => s.const !== undefined)) return `Expected ${schema.anyOf.map((s) => JSON.stringify(s.const)).join(' or ')}`;
  // Only a failed pattern is about U+0000: a missing id, one of the wrong type or length says so in TypeBox's words.
  if (e.type === ValueErrorType.StringPattern && schema.pattern === NO_NUL) return 'Must not contain the character U+0000';
  // A map keyed by ids (sync positions) refuses an extra property only for its key's pattern.
  if (e.type === ValueErrorType.ObjectAdditionalProperties && schema.patternProperties && NO_NUL in schema.patternProperties) {
    return 'Keys must not contain the character U+0000';
  }
  return e.message;
}

/**
 * The failing field's path with `sep` between its parts ("members.0"), or '' for the whole value. Control
 * characters of a client's key are written as U+XXXX, so the error message never carries them raw.
 */
export function schemaErrorPath(e: SchemaError | undefined, sep: string): string {
  if (!e?.path) return '';
  return e.path
    .slice(1)
    .replace(/\//g, sep)
    // eslint-disable-next-line no-control-regex -- finding control characters is the point
    .replace(/[\u0000-\u001f\u007f]/g, (c) => `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`);
}
