/**
 * Client frame text → a typed frame, or a protocol error naming what is wrong.
 * One compiled checker per frame type, chosen by `type`, so a bad frame costs
 * one JSON.parse and one check.
 */
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { TSchema } from '@sinclair/typebox';
import { ClientFrameSchemas, type ClientFrame, type FrameRef } from '../protocol/frames.js';
import { ParleyError } from '../core/errors.js';
import { explainSchemaError, schemaErrorPath } from './schema-error.js';

const checkers = new Map<string, TypeCheck<TSchema>>(
  Object.entries(ClientFrameSchemas).map(([type, schema]) => [type, TypeCompiler.Compile(schema as TSchema)]),
);

export type Parsed = { ok: true; frame: ClientFrame } | { ok: false; error: ParleyError; ref?: FrameRef };

function refOf(v: Record<string, unknown>): FrameRef | undefined {
  const r = v['ref'];
  return typeof r === 'string' || (typeof r === 'number' && Number.isInteger(r)) ? r : undefined;
}

export function parseClientFrame(text: string): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: new ParleyError('bad_request', 'The frame is not valid JSON.') };
  }
  return checkClientFrame(value);
}

export function checkClientFrame(value: unknown): Parsed {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: new ParleyError('bad_request', 'A frame must be a JSON object.') };
  }
  const obj = value as Record<string, unknown>;
  const ref = refOf(obj);
  const type = obj['type'];
  if (typeof type !== 'string') return { ok: false, ref, error: new ParleyError('bad_request', 'The frame has no "type" string.') };
  const check = checkers.get(type);
  if (!check) return { ok: false, ref, error: new ParleyError('bad_request', `Unknown frame type "${type.slice(0, 32)}".`) };
  if (!check.Check(value)) {
    const first = check.Errors(value).First();
    const path = schemaErrorPath(first, '/');
    const where = path ? `field ${path}` : 'frame';
    return { ok: false, ref, error: new ParleyError('bad_request', `Invalid ${type} frame: ${where}: ${explainSchemaError(first)}.`) };
  }
  return { ok: true, frame: value as ClientFrame };
}
