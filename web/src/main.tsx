import { render } from 'preact';
import { ParleyClient } from '../../src/client/index.js';
import { App } from './app.js';
import './styles.css';

// The app is served by the Parley server itself, so '' (same origin) is the server.
const client = new ParleyClient({ url: '' });
render(<App client={client} />, document.getElementById('app') as HTMLElement);
