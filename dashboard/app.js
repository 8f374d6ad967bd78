// Usher's dashboard: one live feed (GET /events, server-sent events) keeps
// the chart points and the broker's state; three pages draw from it.
// Actions call the ordinary HTTP API (docs/http-api.md).

import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';

import { DeadLetters } from './dead-letters.js';
import { html } from './lib.js';
import { Overview, Queues } from './pages.js';

/** The chart points (kept for the last minutes) and the latest state. */
function useFeed() {
  const [feed, setFeed] = useState({ points: [], state: null, live: false });

  useEffect(() => {
    const source = new EventSource('../events');
    source.addEventListener('history', (event) => {
      const { points, state } = JSON.parse(event.data);
      setFeed({ points, state, live: true });
    });
    source.addEventListener('update', (event) => {
      const { point, state } = JSON.parse(event.data);
      setFeed((old) => ({ points: [...old.points.slice(-119), point], state, live: true }));
    });
    source.onerror = () => setFeed((old) => ({ ...old, live: false }));
    return () => source.close();
  }, []);
  return feed;
}

const PAGES = {
  overview: ['Overview', Overview],
  queues: ['Queues', Queues],
  'dead-letters': ['Dead letters', DeadLetters],
};

function currentPage() {
  const name = location.hash.slice(1);
  return Object.hasOwn(PAGES, name) ? name : 'overview';
}

function App() {
  const feed = useFeed();
  const [page, setPage] = useState(currentPage());

  useEffect(() => {
    const onHash = () => setPage(currentPage());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  const [, Page] = PAGES[page];
  return html`
    <header>
      <strong>Usher</strong>
      <nav>
        ${Object.entries(PAGES).map(
          ([name, [title]]) =>
            html`<a href=${`#${name}`} class=${name === page ? 'active' : ''}>${title}</a>`,
        )}
      </nav>
      <span class=${feed.live ? 'live' : 'offline'}>${feed.live ? 'live' : 'offline'}</span>
    </header>
    <main>
      ${feed.state === null ? html`<p>Connecting…</p>` : html`<${Page} feed=${feed} />`}
    </main>
  `;
}

render(html`<${App} />`, document.getElementById('app'));
