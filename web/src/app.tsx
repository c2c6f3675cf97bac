import { useEffect, useState } from 'preact/hooks';
import type { ParleyClient } from '../../src/client/index.js';
import { ParleyError } from '../../src/client/index.js';
import { ChatScreen } from './chat.js';
import { clearDrafts } from './conversation.js';
import { Logo } from './icons.js';
import { errorText } from './util.js';

type Phase = 'loading' | 'signed-out' | 'signed-in';

export function App({ client }: { client: ParleyClient }) {
  const [phase, setPhase] = useState<Phase>('loading');

  useEffect(() => {
    const off = client.on('session', (u) => {
      // Whoever signs in next on this page must not find the last account's unsent text.
      if (!u) clearDrafts();
      setPhase(u ? 'signed-in' : 'signed-out');
    });
    client
      .restore()
      .then((ok) => setPhase(ok ? 'signed-in' : 'signed-out'))
      .catch(() => setPhase('signed-out'));
    return off;
  }, [client]);

  if (phase === 'loading') {
    return (
      <div class="splash" aria-busy="true">
        <Logo size={56} />
      </div>
    );
  }
  if (phase === 'signed-out') return <AuthScreen client={client} />;
  return <ChatScreen client={client} />;
}

function AuthScreen({ client }: { client: ParleyClient }) {
  const [mode, setMode] = useState<'login' | 'register'>('login');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const name = username.trim().toLowerCase();
      if (mode === 'register') await client.register(name, password, displayName.trim() || undefined);
      await client.login(name, password);
    } catch (err) {
      setError(err instanceof ParleyError ? explain(err, mode) : 'Something went wrong. Please try again.');
      setBusy(false);
    }
  };

  return (
    <main class="auth">
      <form class="auth-card" onSubmit={submit} aria-labelledby="auth-title">
        <div class="auth-brand">
          <Logo size={44} />
          <span>Parley</span>
        </div>
        <h1 id="auth-title">{mode === 'login' ? 'Sign in' : 'Create your account'}</h1>
        <label class="field">
          <span>Username</span>
          <input
            name="username"
            autoComplete="username"
            autoCapitalize="none"
            spellcheck={false}
            required
            minLength={3}
            maxLength={32}
            pattern="[a-zA-Z0-9_.\-]+"
            value={username}
            onInput={(e) => setUsername(e.currentTarget.value)}
            autoFocus
          />
        </label>
        {mode === 'register' && (
          <label class="field">
            <span>Display name <em>(optional)</em></span>
            <input name="displayName" autoComplete="name" maxLength={64} value={displayName} onInput={(e) => setDisplayName(e.currentTarget.value)} />
          </label>
        )}
        <label class="field">
          <span>Password</span>
          <input
            name="password"
            type="password"
            autoComplete={mode === 'login' ? 'current-password' : 'new-password'}
            required
            minLength={8}
            maxLength={256}
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        <button class="btn primary wide" type="submit" disabled={busy}>
          {busy ? 'Please wait…' : mode === 'login' ? 'Sign in' : 'Create account'}
        </button>
        <p class="auth-switch">
          {mode === 'login' ? 'New to Parley?' : 'Already have an account?'}{' '}
          <button
            type="button"
            class="link"
            onClick={() => {
              setMode(mode === 'login' ? 'register' : 'login');
              setError('');
            }}
          >
            {mode === 'login' ? 'Create an account' : 'Sign in'}
          </button>
        </p>
      </form>
    </main>
  );
}

/** "in 40 seconds", "in 3 minutes"; "in a moment" when the server gave no wait. */
function waitText(ms: number | undefined): string {
  if (ms === undefined || ms <= 0) return 'in a moment';
  const s = Math.ceil(ms / 1000);
  if (s < 60) return s === 1 ? 'in a second' : `in ${s} seconds`;
  const m = Math.ceil(s / 60);
  return m === 1 ? 'in a minute' : `in ${m} minutes`;
}

function explain(err: ParleyError, mode: 'login' | 'register'): string {
  if (err.code === 'conflict') return 'That username is taken. Try another one.';
  if (err.code === 'unauthorized') return 'Wrong username or password.';
  if (err.code === 'rate_limited') return `Too many attempts. Try again ${waitText(err.retryAfterMs)}.`;
  if (err.code === 'bad_request')
    return mode === 'register' ? 'Usernames are 3–32 letters, digits, dots, dashes or underscores; passwords at least 8 characters.' : errorText(err, 'Something went wrong. Please try again.');
  // A transport failure as a plain sentence (UNREACHABLE); the server's reason as it is.
  return errorText(err, 'Something went wrong. Please try again.');
}
