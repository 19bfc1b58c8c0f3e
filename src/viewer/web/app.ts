// The viewer page: a newest-first list kept live by the event stream, and one message in tabs.
// It reads only the JSON API (/api/v1/), like any script would. Served with a strict CSP: no inline
// script or style attribute is needed by anything below.
import { api, byId, formatSize, formatTime, h } from './dom.js';

// The parts of the API's shapes (src/viewer/present.ts) this page uses.
interface Badge {
  kind: string;
  label: string;
  title: string;
}
interface ListItem {
  id: string;
  receivedAt: string;
  size: number;
  subject: string;
  from: string;
  to: string[];
  snippet: string;
  attachmentCount: number;
  envelope: { mailFrom: string; rcptTo: string[] };
  mailboxes: string[];
  badges: Badge[];
}
interface Attachment {
  index: number;
  filename: string;
  contentType: string;
  size: number;
  inline: boolean;
  url: string;
}
interface MessageView extends ListItem {
  cc: string[];
  deliveries: { recipient: string; mailbox: string; rule: string }[];
  headers: { name: string; value: string }[];
  text: string;
  html: string | null;
  remoteImages: number;
  attachments: Attachment[];
  authUser?: string;
  tls?: string;
}

const PAGE = 50;
const state = { query: '', mailbox: '', limit: PAGE, selected: '', tab: 'html' };

const rows = byId<HTMLUListElement>('rows');
const search = byId<HTMLInputElement>('search');
const mailboxSelect = byId<HTMLSelectElement>('mailbox');

function badgeList(badges: Badge[]): HTMLElement {
  return h('span', { class: 'badge-list' }, ...badges.map((b) => h('span', { class: `badge badge-${b.kind}`, title: b.title }, b.label)));
}

function row(m: ListItem): HTMLLIElement {
  const li = h(
    'li',
    { class: 'row', role: 'option', tabindex: '0', 'data-id': m.id, 'aria-selected': String(m.id === state.selected) },
    h('span', { class: 'from' }, m.from || m.envelope.mailFrom || '<>'),
    h('time', { class: 'time', datetime: m.receivedAt }, formatTime(m.receivedAt)),
    h('span', { class: 'subject' }, m.subject || '(no subject)', m.attachmentCount > 0 ? h('span', { class: 'clip' }, ` ${m.attachmentCount} attachment${m.attachmentCount === 1 ? '' : 's'}`) : null),
    h('span', { class: 'to' }, `to ${m.mailboxes.join(', ') || m.to.join(', ')}`),
    m.badges.length > 0 ? badgeList(m.badges) : null,
    h('span', { class: 'snippet' }, m.snippet),
  );
  return li;
}

async function loadList(): Promise<void> {
  const params = new URLSearchParams({ limit: String(state.limit) });
  if (state.query) params.set('query', state.query);
  if (state.mailbox) params.set('mailbox', state.mailbox);
  const result = await api<{ total: number; messages: ListItem[] }>(`/api/v1/messages?${params}`);
  const focused = (document.activeElement as HTMLElement | null)?.dataset['id'];
  rows.replaceChildren(...result.messages.map(row));
  if (focused) rows.querySelector<HTMLElement>(`[data-id="${CSS.escape(focused)}"]`)?.focus();
  byId('count').textContent = `${result.total} message${result.total === 1 ? '' : 's'}${state.query || state.mailbox ? ' matching' : ''}`;
  byId('more').hidden = result.total <= result.messages.length;
  document.body.dataset['listed'] = String(result.messages.length);
}

async function loadMailboxes(): Promise<void> {
  const { mailboxes } = await api<{ mailboxes: string[] }>('/api/v1/mailboxes');
  const current = state.mailbox;
  mailboxSelect.replaceChildren(h('option', { value: '' }, 'All mailboxes'), ...mailboxes.map((m) => h('option', { value: m }, m)));
  mailboxSelect.value = mailboxes.includes(current) ? current : '';
}

function metaRow(label: string, value: string): Node[] {
  return value ? [h('dt', {}, label), h('dd', {}, value)] : [];
}

const TABS = ['html', 'text', 'headers', 'raw', 'attachments'] as const;

async function renderTab(m: MessageView, remote = false): Promise<void> {
  const panel = byId('panel');
  for (const tab of byId('tabs').children) tab.setAttribute('aria-selected', String((tab as HTMLElement).dataset['tab'] === state.tab));
  const base = `/api/v1/messages/${encodeURIComponent(m.id)}`;
  switch (state.tab) {
    case 'html': {
      if (m.html === null) return panel.replaceChildren(h('p', { class: 'note' }, 'This message has no HTML part.'));
      // No allow-scripts, no allow-same-origin: the mail runs nothing and reads nothing of this page.
      const frame = h('iframe', { class: 'mail-frame', title: 'HTML message', sandbox: 'allow-popups allow-popups-to-escape-sandbox', src: `${base}/html${remote ? '?remote=1' : ''}` });
      const notice =
        m.remoteImages > 0 && !remote
          ? h('p', { class: 'note remote-notice' }, `${m.remoteImages} remote image${m.remoteImages === 1 ? '' : 's'} blocked. `, h('button', { type: 'button', id: 'show-remote' }, 'Show remote images'))
          : null;
      notice?.querySelector('button')?.addEventListener('click', () => void renderTab(m, true));
      return notice ? panel.replaceChildren(notice, frame) : panel.replaceChildren(frame);
    }
    case 'text':
      return panel.replaceChildren(h('pre', { class: 'text' }, m.text || '(no text part)'));
    case 'headers':
      return panel.replaceChildren(
        h('table', { class: 'headers' }, h('tbody', {}, ...m.headers.map((x) => h('tr', {}, h('th', { scope: 'row' }, x.name), h('td', {}, x.value))))),
      );
    case 'raw': {
      const raw = await fetch(`${base}/raw`).then((r) => r.text());
      return panel.replaceChildren(h('pre', { class: 'raw' }, raw));
    }
    case 'attachments':
      return panel.replaceChildren(
        m.attachments.length === 0
          ? h('p', { class: 'note' }, 'No attachments.')
          : h(
              'ul',
              { class: 'attachments' },
              ...m.attachments.map((a) => h('li', {}, h('a', { href: a.url, download: a.filename }, a.filename), ` ${a.contentType}, ${formatSize(a.size)}${a.inline ? ', inline' : ''}`)),
            ),
      );
  }
}

let current: MessageView | undefined;

async function showMessage(id: string): Promise<void> {
  state.selected = id;
  for (const el of rows.children) el.setAttribute('aria-selected', String((el as HTMLElement).dataset['id'] === id));
  document.body.classList.toggle('show-message', id !== '');
  byId('message-pane').hidden = id === '';
  byId('empty-pane').hidden = id !== '';
  if (!id) return;
  let m: MessageView;
  try {
    m = await api<MessageView>(`/api/v1/messages/${encodeURIComponent(id)}`);
  } catch (error) {
    byId('subject').textContent = (error as Error).message;
    return;
  }
  current = m;
  byId('subject').textContent = m.subject || '(no subject)';
  byId('meta').replaceChildren(
    ...metaRow('From', m.from),
    ...metaRow('To', m.to.join(', ')),
    ...metaRow('Cc', m.cc.join(', ')),
    ...metaRow('Envelope', `${m.envelope.mailFrom || '<>'} → ${m.envelope.rcptTo.join(', ')}`),
    ...metaRow('Delivered to', m.deliveries.map((d) => (d.recipient === d.mailbox ? d.mailbox : `${d.recipient} → ${d.mailbox}`)).join(', ')),
    ...metaRow('Received', `${formatTime(m.receivedAt, true)} · ${formatSize(m.size)}${m.tls ? ` · ${m.tls}` : ''}${m.authUser ? ` · AUTH ${m.authUser}` : ''}`),
  );
  byId('badges').replaceChildren(badgeList(m.badges));
  byId<HTMLAnchorElement>('download').href = `/api/v1/messages/${encodeURIComponent(id)}/raw`;
  byId<HTMLAnchorElement>('download').download = `${id}.eml`;
  // Files counted as in the list (inline images apart), so "2 attachments" there reads "Attachments (2)" here.
  const inline = m.attachments.filter((a) => a.inline).length;
  const files = `Attachments (${m.attachments.length - inline}${inline > 0 ? ` + ${inline} inline` : ''})`;
  const labels: Record<(typeof TABS)[number], string> = { html: 'HTML', text: 'Text', headers: 'Headers', raw: 'Raw', attachments: files };
  byId('tabs').replaceChildren(...TABS.map((t) => h('button', { type: 'button', role: 'tab', 'data-tab': t, id: `tab-${t}` }, labels[t])));
  if (state.tab === 'html' && m.html === null) state.tab = 'text';
  await renderTab(m);
}

function selectFromHash(): void {
  void showMessage(decodeURIComponent(location.hash.replace(/^#\/?/, '')));
}

// --- events -----------------------------------------------------------------------------------

let reload: ReturnType<typeof setTimeout> | undefined;
function reloadSoon(): void {
  clearTimeout(reload);
  reload = setTimeout(() => void Promise.all([loadList(), loadMailboxes()]), 100);
}

function connectEvents(): void {
  const events = new EventSource('/api/v1/events');
  const live = byId('live');
  events.addEventListener('open', () => live.classList.add('on'));
  events.addEventListener('error', () => live.classList.remove('on'));
  events.addEventListener('added', reloadSoon);
  events.addEventListener('purged', () => {
    reloadSoon();
    location.hash = '';
  });
  events.addEventListener('deleted', (e) => {
    reloadSoon();
    if ((JSON.parse((e as MessageEvent<string>).data) as { id: string }).id === state.selected) location.hash = '';
  });
}

rows.addEventListener('click', (e) => {
  const id = (e.target as HTMLElement).closest<HTMLElement>('.row')?.dataset['id'];
  if (id) location.hash = `/${id}`;
});
rows.addEventListener('keydown', (e) => {
  const el = (e.target as HTMLElement).closest<HTMLElement>('.row');
  if (!el) return;
  if (e.key === 'Enter' || e.key === ' ') {
    e.preventDefault();
    location.hash = `/${el.dataset['id'] ?? ''}`;
  } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    e.preventDefault();
    ((e.key === 'ArrowDown' ? el.nextElementSibling : el.previousElementSibling) as HTMLElement | null)?.focus();
  }
});

let typing: ReturnType<typeof setTimeout> | undefined;
search.addEventListener('input', () => {
  clearTimeout(typing);
  typing = setTimeout(() => {
    state.query = search.value.trim();
    state.limit = PAGE;
    void loadList();
  }, 150);
});
byId('search-form').addEventListener('submit', (e) => e.preventDefault());
mailboxSelect.addEventListener('change', () => {
  state.mailbox = mailboxSelect.value;
  state.limit = PAGE;
  void loadList();
});
byId('more').addEventListener('click', () => {
  state.limit += PAGE;
  void loadList();
});
byId('tabs').addEventListener('click', (e) => {
  const tab = (e.target as HTMLElement).dataset['tab'];
  if (tab && current) {
    state.tab = tab;
    void renderTab(current);
  }
});
byId('back').addEventListener('click', () => {
  location.hash = '';
  rows.querySelector<HTMLElement>(`[data-id="${CSS.escape(current?.id ?? '')}"]`)?.focus();
});
byId('delete').addEventListener('click', () => {
  if (!current) return;
  void api(`/api/v1/messages/${encodeURIComponent(current.id)}`, { method: 'DELETE' }).then(() => (location.hash = ''));
});
byId('purge').addEventListener('click', () => {
  if (!confirm('Delete every captured message, here and in the GreenMail mailboxes?')) return;
  void api('/api/v1/messages', { method: 'DELETE' }).catch((error: Error) => alert(error.message));
});
window.addEventListener('hashchange', selectFromHash);

void Promise.all([loadList(), loadMailboxes()]).then(selectFromHash);
connectEvents();
