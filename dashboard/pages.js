// The overview and queues pages. Both draw from the live feed; the
// queue actions call the HTTP API and the next update shows the result.

import { useState } from 'preact/hooks';

import { Chart } from './charts.js';
import { api, bytes, html, humanDuration, num, queuePath } from './lib.js';

export function Overview({ feed }) {
  const { state, points } = feed;
  const { health, connections, alerts } = state;
  // Admission control (#6) reports its level in the health answer when
  // the broker has it; nothing is shown otherwise.
  const admission = health.admission?.level ?? health.admission;

  return html`
    <section class="cards">
      <div class="card ${health.status === 'ok' ? 'ok' : 'bad'}" data-health=${health.status}>
        <h3>Health</h3>
        <p class="big">${health.status ?? '?'}</p>
        <p>up ${humanDuration(health.uptimeMs ?? 0)} · ${health.queues} queues</p>
        ${admission === undefined ? null : html`<p>admission: <b>${String(admission)}</b></p>`}
      </div>
      <div class="card">
        <h3>Connections</h3>
        ${Object.entries(connections).map(
          ([protocol, count]) =>
            html`<p>${protocol}: <b data-connections=${protocol}>${count}</b></p>`,
        )}
      </div>
      <div class="card ${alerts.some((a) => a.state === 'firing') ? 'bad' : 'ok'}">
        <h3>Alerts</h3>
        <p class="big">${alerts.filter((a) => a.state === 'firing').length} firing</p>
        <p>${alerts.filter((a) => a.state === 'pending').length} pending</p>
      </div>
    </section>
    <section class="charts">
      <${Chart}
        title="Messages per second"
        unit="msg/s"
        points=${points}
        lines=${[
          { label: 'published', key: 'publishRate' },
          { label: 'delivered', key: 'deliverRate' },
          { label: 'acked', key: 'ackRate' },
        ]}
      />
      <${Chart}
        title="Latency p95"
        unit="ms"
        points=${points}
        lines=${[
          { label: 'publish to ack', key: 'p95PublishToAckMs' },
          { label: 'time in queue', key: 'p95TimeInQueueMs' },
        ]}
      />
    </section>
    <h2>Alerts</h2>
    <${AlertTable} alerts=${alerts} />
  `;
}

function AlertTable({ alerts }) {
  if (alerts.length === 0) return html`<p class="quiet">No alert is firing or pending.</p>`;
  return html`
    <table class="alerts">
      <tr><th>alert</th><th>state</th><th>severity</th><th>summary</th><th>since</th></tr>
      ${alerts.map(
        (alert) => html`
          <tr class=${alert.state} data-alert=${alert.name}>
            <td>${alert.name}</td>
            <td>${alert.state}</td>
            <td>${alert.severity}</td>
            <td>${alert.summary}</td>
            <td>${new Date(alert.since).toLocaleTimeString()}</td>
          </tr>
        `,
      )}
    </table>
  `;
}

export function Queues({ feed }) {
  const [error, setError] = useState(null);
  const act = async (action) => {
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(err.message);
    }
  };

  return html`
    <${CreateQueue} act=${act} />
    ${error === null ? null : html`<p class="error">${error}</p>`}
    <table class="queues">
      <tr>
        <th>queue</th><th>status</th><th>ready</th><th>in flight</th><th>delayed</th><th>lag</th>
        <th>size</th><th>in/s</th><th>acks/s</th><th>settings</th><th></th>
      </tr>
      ${feed.state.queues.map((queue) => html`<${QueueRow} queue=${queue} act=${act} />`)}
    </table>
  `;
}

function QueueRow({ queue, act }) {
  const { name, stats, settings } = queue;
  const purge = () =>
    confirm(`Purge every message of "${name}"?`) &&
    act(() => api('POST', `${queuePath(name)}/purge`));
  const remove = () =>
    confirm(`Delete queue "${name}" and its messages?`) &&
    act(() => api('DELETE', queuePath(name)));

  return html`
    <tr data-queue=${name}>
      <td>${name}${queue.deadLetterQueue ? html` <span class="tag">DLQ</span>` : null}</td>
      <td data-status class=${`status ${queue.status}`}>${queue.status}</td>
      <td data-ready>${stats.ready}</td>
      <td>${stats.inFlight}</td>
      <td>${stats.delayed}</td>
      <td>${num(stats.oldestReadyAgeMs / 1000)} s</td>
      <td>${stats.total} · ${bytes(stats.bytes)}</td>
      <td>${num(queue.publishRate)}</td>
      <td>${num(queue.ackRate)}</td>
      <td class="settings">
        ${settings.fifo ? 'FIFO · ' : ''}attempts ${settings.maxAttempts || '∞'} ·
        lease ${settings.visibilityTimeoutMs / 1000} s
        ${settings.deadLetter === null ? '' : ` · DLQ ${settings.deadLetter}`}
        ${settings.messageTtlMs === null ? '' : ` · TTL ${settings.messageTtlMs / 1000} s`}
      </td>
      <td>
        <button onClick=${purge}>purge</button>
        <button onClick=${remove}>delete</button>
      </td>
    </tr>
  `;
}

function CreateQueue({ act }) {
  const [name, setName] = useState('');
  const [deadLetter, setDeadLetter] = useState('');
  const [fifo, setFifo] = useState(false);

  const submit = (event) => {
    event.preventDefault();
    const settings = { fifo };
    if (deadLetter !== '') settings.deadLetter = deadLetter;
    act(async () => {
      await api('PUT', queuePath(name), settings);
      setName('');
      setDeadLetter('');
    });
  };

  return html`
    <form class="create" onSubmit=${submit}>
      <input name="name" placeholder="new queue" value=${name} required
        onInput=${(e) => setName(e.target.value)} />
      <input name="deadLetter" placeholder="dead-letter queue (optional)" value=${deadLetter}
        onInput=${(e) => setDeadLetter(e.target.value)} />
      <label><input type="checkbox" checked=${fifo}
        onChange=${(e) => setFifo(e.target.checked)} /> FIFO</label>
      <button type="submit">create</button>
    </form>
  `;
}
