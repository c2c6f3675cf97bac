/** The embedded Registry engine against the shared Registry port suite. */
import { MemoryRegistry } from '../../src/engines/memory/registry.js';
import { registrySuite } from '../ports/registry.suite.js';

registrySuite(
  'memory',
  async () => new MemoryRegistry(),
  (registry) => registry.close(),
);
