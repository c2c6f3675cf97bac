/**
 * Lua scripts as typed functions. ioredis sends EVALSHA and falls back to EVAL
 * on NOSCRIPT, so a restarted Redis (empty script cache) needs nothing from us.
 */
import type { Redis } from 'ioredis';

/** What a script may answer (RESP2 conversions of Lua values). */
export type ScriptReply = string | number | null | ScriptReply[];

export type Script = (keys: readonly string[], args: readonly (string | number)[]) => Promise<ScriptReply>;

type Defined = (...keysThenArgs: (string | number)[]) => Promise<ScriptReply>;

export function defineScript(redis: Redis, name: string, keyCount: number, lua: string): Script {
  redis.defineCommand(name, { lua, numberOfKeys: keyCount });
  // defineCommand adds the method at run time; ioredis' types cannot know it.
  const command = (redis as unknown as Record<string, Defined>)[name];
  if (!command) throw new Error(`ioredis did not define ${name}`);
  return (keys, args) => {
    if (keys.length !== keyCount) throw new Error(`${name} takes ${keyCount} keys, got ${keys.length}`);
    return command.call(redis, ...keys, ...args);
  };
}
