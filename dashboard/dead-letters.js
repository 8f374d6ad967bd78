// The dead-letters page: a dead-letter queue's messages grouped by why
// they died and where, a message's body, headers and death history, and
// redrive of one, a selection, a whole group or everything, back to the
// queue each died in or to another queue.

import { useEffect, useState } from 'preact/hooks';

import { api, html, plural, queuePath, time } from './lib.js';

const REASON = 'x-usher-death-reason';
const SOURCE = 'x-usher-death-queue';
const HISTORY = 'x-usher-deaths';
const ATTEMPTS = 'x-usher-death-attempts';
/** The peek API's largest page; bigger DLQs show their first messages. */
const PEEK_LIMIT = 1000;

export function DeadLetters({ feed }) {
  const dlqs = feed.state.queues.filter((queue) => queue.deadLetterQueue);
  const [chosen, setChosen] = useState(null);
  // Until one is picked, the first holding messages: an empty one first
  // would hide the dead letters the user came for.
  const dlq =
    dlqs.find((queue) => queue.name === chosen) ??
    dlqs.find((queue) => queue.stats.total > 0) ??
    dlqs[0];

  if (dlq === undefined) {
    return html`<p class="quiet">No queue has a dead-letter queue yet.</p>`;
  }
  return html`
    <p>
      Dead-letter queue:
      ${dlqs.map(
        (queue) => html`
          <button class=${queue === dlq ? 'active' : ''} onClick=${() => setChosen(queue.name)}>
            ${queue.name} (${queue.stats.total})
          </button>
        `,
      )}
    </p>
    <${DeadLetterQueue} key=${dlq.name} dlq=${dlq} />
  `;
}

function DeadLetterQueue({ dlq }) {
  const [messages, setMessages] = useState(null);
  const [open, setOpen] = useState(null);
  const [selected, setSelected] = useState(new Set());
  const [peeked, setPeeked] = useState(null);
  const [target, setTarget] = useState('');
  const [notice, setNotice] = useState(null);

  // Refetched whenever the queue's size changes (a redrive, a new death).
  const reload = () =>
    api('GET', `${queuePath(dlq.name)}/messages?limit=${PEEK_LIMIT}`).then(
      (answer) => setMessages(answer.messages),
      (err) => setNotice(err.message),
    );
  useEffect(() => void reload(), [dlq.name, dlq.stats.total]);

  const redrive = async (filter, what) => {
    const body = { ...filter };
    if (target !== '') body.to = target;
    try {
      const { moved } = await api('POST', `${queuePath(dlq.name)}/redrive`, body);
      setNotice(`${moved} of ${what} moved to ${target === '' ? 'their source queue' : target}`);
      setSelected(new Set());
      setPeeked(null);
      await reload();
    } catch (err) {
      setNotice(err.message);
    }
  };
  const redriveGroup = ({ reason, source }) =>
    redrive({ reason, source }, `${reason} from ${source}`);
  const purge = async () => {
    if (!confirm(`Purge every message of "${dlq.name}"?`)) return;
    await api('POST', `${queuePath(dlq.name)}/purge`).catch((err) => setNotice(err.message));
    await reload();
  };
  // From the latest state, not this render's: two checks before the next
  // render (a quick user, a slow machine) must both count.
  const toggle = (id) =>
    setSelected((current) => {
      const next = new Set(current);
      if (!next.delete(id)) next.add(id);
      return next;
    });

  if (messages === null) {
    return notice === null
      ? html`<p class="quiet">loading ${dlq.name}…</p>`
      : html`<p class="notice" data-notice>${notice}</p>`;
  }
  if (messages.length === 0) {
    return html`
      ${notice === null ? null : html`<p class="notice" data-notice>${notice}</p>`}
      <p class="quiet" data-empty>No dead letters in ${dlq.name}.</p>
    `;
  }
  const groups = groupByDeath(messages);
  return html`
    <div class="toolbar">
      <label>Redrive to <input name="target" placeholder="source queue" value=${target}
        onInput=${(e) => setTarget(e.target.value)} /></label>
      <button onClick=${() => redrive({}, 'all messages')}>redrive all</button>
      <button disabled=${selected.size === 0}
        onClick=${() => redrive({ ids: [...selected] }, `${selected.size} selected`)}>
        redrive selected (${selected.size})
      </button>
      <button onClick=${purge}>purge</button>
      ${messages.length >= PEEK_LIMIT ? html`<span>showing the first ${PEEK_LIMIT}</span>` : null}
    </div>
    ${notice === null ? null : html`<p class="notice" data-notice>${notice}</p>`}
    <table class="groups">
      <tr><th>reason</th><th>source queue</th><th>messages</th><th></th></tr>
      ${groups.map(
        (group) => html`
          <tr data-group=${`${group.reason}/${group.source}`}>
            <td>${group.reason}</td>
            <td>${group.source}</td>
            <td data-count>${group.messages.length}</td>
            <td>
              <button onClick=${() => setOpen(open === group.key ? null : group.key)}>
                ${open === group.key ? 'hide' : 'show'}
              </button>
              <button onClick=${() => redriveGroup(group)}>redrive group</button>
            </td>
          </tr>
          ${open === group.key
            ? group.messages.map(
                (message) => html`
                  <tr class="message" data-message=${message.id}>
                    <td><input type="checkbox" checked=${selected.has(message.id)}
                      onChange=${() => toggle(message.id)} /></td>
                    <td>
                      <a href="#dead-letters" onClick=${() => setPeeked(message)}>${message.id}</a>
                    </td>
                    <td>${plural(message.headers[ATTEMPTS], 'attempt')}</td>
                    <td><button onClick=${() => redrive({ ids: [message.id] }, message.id)}>
                      redrive</button></td>
                  </tr>
                `,
              )
            : null}
        `,
      )}
    </table>
    ${peeked === null ? null : html`<${Peek} message=${peeked} close=${() => setPeeked(null)} />`}
  `;
}

/** Messages grouped by the reason and queue of their last death. */
function groupByDeath(messages) {
  const groups = new Map();
  for (const message of messages) {
    const reason = message.headers[REASON] ?? 'unknown';
    const source = message.headers[SOURCE] ?? 'unknown';
    const key = `${reason}\u0000${source}`;
    if (!groups.has(key)) groups.set(key, { key, reason, source, messages: [] });
    groups.get(key).messages.push(message);
  }
  return [...groups.values()].sort((a, b) => b.messages.length - a.messages.length);
}

function Peek({ message, close }) {
  const body = message.body === undefined ? `base64: ${message.bodyBase64}` : message.body;
  let history = [];
  try {
    history = JSON.parse(message.headers[HISTORY] ?? '[]');
  } catch {
    // A producer may have set the header itself; show the headers only.
  }

  return html`
    <aside class="peek" data-peek=${message.id}>
      <button class="close" onClick=${close}>close</button>
      <h3>${message.id}</h3>
      <p>published ${time(message.publishedAt)} · ${plural(message.headers[ATTEMPTS], 'attempt')}</p>
      <h4>Body</h4>
      <pre>${typeof body === 'string' ? body : JSON.stringify(body, null, 2)}</pre>
      <h4>Deaths</h4>
      <table>
        <tr><th>time</th><th>queue</th><th>reason</th><th>attempts</th><th>error</th></tr>
        ${history.map(
          (death) => html`<tr>
            <td>${death.time}</td><td>${death.queue}</td>
            <td>${death.reason}${death.count > 1 ? ` (${death.count} times)` : ''}</td>
            <td>${death.attempts}</td><td>${death.error ?? ''}</td>
          </tr>`,
        )}
      </table>
      <h4>Headers</h4>
      <table>
        ${Object.entries(message.headers)
          .filter(([name]) => name !== HISTORY)
          .map(([name, value]) => html`<tr><td>${name}</td><td>${value}</td></tr>`)}
      </table>
    </aside>
  `;
}
