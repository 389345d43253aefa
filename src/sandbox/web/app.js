// The sandbox page: a small Slack (#devops-emergency, the incident channels Lifeline creates, threads, Block Kit,
// buttons), the runbooks to try, the sample alert's button, the PagerDuty events, the simulated status page, AWS and
// Vercel, redrawn from GET /api/state whenever the server says something changed (Server-Sent Events).
// Plain JavaScript for any current browser: nothing to build, nothing fetched from the network.

const $ = (id) => document.getElementById(id);

const view = {
  /** The last GET /api/state. */
  state: undefined,
  user: localStorage.getItem('lifeline-sandbox.user') ?? 'U0ONCALL',
  channel: undefined,
  /** The open thread: its parent's ts. */
  thread: undefined,
};

const EXAMPLES = [
  '/incident sev1 Database unreachable',
  '/incident list',
  '/incident help',
  '/dr status production',
  '/dr restore production latest',
  '/dr backups production',
  '/dr backup production',
  '/dr drill production',
  '/dr scale production shop-api 5',
  '/dr redeploy production shop-web',
  '/dr logs production shop-api --since 30m --filter ERROR',
  '/dr restore production list',
  '/dr audit production',
  '/dr runbook list',
  '/dr runbook show region-failover',
  '/dr run region-failover --dry-run',
  '/dr run region-failover',
  '/dr run frontend-rollback',
  '/dr help',
];

// Slack's names for the emoji Lifeline uses (and a few more).
const EMOJI = {
  rotating_light: '🚨',
  eyes: '👀',
  white_check_mark: '✅',
  x: '❌',
  warning: '⚠️',
  no_entry_sign: '🚫',
  no_entry: '⛔',
  gear: '⚙️',
  scroll: '📜',
  raised_hand: '✋',
  pager: '📟',
  memo: '📝',
  hourglass: '⌛',
  hourglass_flowing_sand: '⏳',
  computer: '💻',
  arrows_counterclockwise: '🔄',
  arrow_forward: '▶️',
  fire: '🔥',
  floppy_disk: '💾',
  rocket: '🚀',
  heavy_check_mark: '✔️',
  information_source: 'ℹ️',
  tada: '🎉',
  bell: '🔔',
  mag: '🔍',
  wrench: '🔧',
  pushpin: '📌',
  satellite_antenna: '📡',
  white_circle: '⚪',
  bust_in_silhouette: '👤',
  fast_forward: '⏩',
  octagonal_sign: '🛑',
  leftwards_arrow_with_hook: '↩️',
};

// ---- talking to the server ---------------------------------------------------------------------------------------

let refreshing;
let refreshAgain = false;

/** Fetches the state and redraws; calls during a fetch make one more fetch after it. */
function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = fetch('/api/state')
    .then((res) => (res.ok ? res.json() : Promise.reject(new Error(`the sandbox answered ${res.status}`))))
    .then((state) => {
      view.state = state;
      render();
    })
    .catch(() => setStatus('stopped', 'the sandbox does not answer'))
    .finally(() => {
      refreshing = undefined;
      if (refreshAgain) {
        refreshAgain = false;
        refresh();
      }
    });
}

async function post(path, body) {
  try {
    const res = await fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = await res.json();
    if (!answer.ok) toast(answer.error ?? `failed (${res.status})`);
    return answer;
  } catch {
    toast('The sandbox does not answer.');
    return { ok: false };
  }
}

// ---- text ----------------------------------------------------------------------------------------------------------

function esc(text) {
  return String(text ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );
}

/** Slack escapes only &, < and > in message text. */
function unescapeSlack(text) {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

function personName(id) {
  const state = view.state;
  if (id === state.bot.id) return state.bot.name;
  return state.people.find((p) => p.id === id)?.name ?? id;
}

/** The workspace's channels, then those Lifeline created for incidents. */
function allChannels() {
  const { channels, incidentChannels } = view.state;
  return [...channels, ...incidentChannels.map((c) => ({ ...c, allowed: false, incident: true }))];
}

function channelName(id) {
  return allChannels().find((c) => c.id === id)?.name ?? id;
}

/** A name that may break only after its separators (_ . /; browsers break after - by themselves), never mid-word. */
function breakable(name) {
  return esc(name).replace(/([_./])/g, '$1<wbr>');
}

/** One `<…>` of Slack's message syntax: mentions, channels, special mentions and links. */
function angleToken(inner) {
  const [target, label] = splitOnce(inner, '|');
  if (target.startsWith('@')) return `<span class="mention">@${esc(label ?? personName(target.slice(1)))}</span>`;
  if (target.startsWith('#')) {
    const id = target.slice(1);
    const name = `#${esc(label ?? channelName(id))}`;
    // A channel the page can show opens on a click, as in Slack.
    return allChannels().some((c) => c.id === id)
      ? `<button type="button" class="mention channel-link" data-channel-id="${esc(id)}">${name}</button>`
      : `<span class="mention">${name}</span>`;
  }
  if (target.startsWith('!')) {
    const name = target.slice(1).split('^')[0];
    return `<span class="mention">${esc(label ?? `@${name}`)}</span>`;
  }
  if (/^(https?:|mailto:)/i.test(target)) {
    return `<a href="${esc(unescapeSlack(target))}" target="_blank" rel="noopener noreferrer">${esc(unescapeSlack(label ?? target))}</a>`;
  }
  return esc(unescapeSlack(inner));
}

function splitOnce(text, separator) {
  const at = text.indexOf(separator);
  return at < 0 ? [text] : [text.slice(0, at), text.slice(at + 1)];
}

/**
 * Slack's mrkdwn as HTML: ```blocks```, `code`, <links and mentions>, *bold*, _italic_, ~strike~, :emoji: and line
 * breaks. Code and tokens are set aside first (as placeholders) so the formatting rules never look inside them.
 */
function mrkdwn(source) {
  const held = [];
  const hold = (html) => `\uE000${held.push(html) - 1}\uE001`;
  let text = String(source ?? '').replace(/[\uE000\uE001]/g, '');
  text = text.replace(/```([\s\S]*?)```/g, (_, code) =>
    hold(`<pre class="code-block">${esc(unescapeSlack(code.replace(/^\n/, '')))}</pre>`),
  );
  text = text.replace(/`([^`\n]+)`/g, (_, code) => hold(`<code>${breakable(unescapeSlack(code))}</code>`));
  text = text.replace(/<([^<>\n]+)>/g, (_, inner) => hold(angleToken(inner)));
  let html = esc(unescapeSlack(text));
  html = html.replace(/:([a-z0-9_+-]+):/g, (whole, name) => EMOJI[name] ?? whole);
  html = html.replace(/(^|[\s(\uE001])\*([^*\n]+)\*(?=$|[\s).,:;!?\uE000])/g, '$1<strong>$2</strong>');
  html = html.replace(/(^|[\s(\uE001])_([^_\n]+)_(?=$|[\s).,:;!?\uE000])/g, '$1<em>$2</em>');
  html = html.replace(/(^|[\s(\uE001])~([^~\n]+)~(?=$|[\s).,:;!?\uE000])/g, '$1<del>$2</del>');
  html = html.replace(/\n/g, '<br>');
  // Only now, with _italic_ read: backup names and paths may wrap after their separators, never mid-word.
  html = html.replace(/(<[^>]*>)|([_/]|\.(?=[a-z]))(?=[^\s<])/gi, (_, tag, separator) => tag ?? `${separator}<wbr>`);
  return html.replace(/\uE000(\d+)\uE001/g, (_, i) => held[Number(i)]);
}

function textObject(object) {
  if (!object || typeof object.text !== 'string') return '';
  return object.type === 'mrkdwn' ? mrkdwn(object.text) : esc(object.text).replace(/\n/g, '<br>');
}

function time(ts) {
  return new Date(Number(String(ts).split('.')[0]) * 1000).toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function age(ms) {
  const seconds = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}

function size(bytes) {
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MB`;
  return `${(bytes / 1024).toFixed(1)} KB`;
}

function initials(name) {
  return name
    .split(/\s+/)
    .map((w) => w[0])
    .join('')
    .slice(0, 2)
    .toUpperCase();
}

// ---- Block Kit -------------------------------------------------------------------------------------------------------

function blocksHtml(message) {
  return message.blocks.map((block, i) => blockHtml(block, i, message)).join('');
}

function blockHtml(block, index, message) {
  switch (block.type) {
    case 'header':
      return `<div class="b-header">${textObject(block.text)}</div>`;
    case 'section': {
      const text = block.text ? `<div class="b-text">${textObject(block.text)}</div>` : '';
      const fields = Array.isArray(block.fields)
        ? `<div class="b-fields">${block.fields.map((f) => `<div>${textObject(f)}</div>`).join('')}</div>`
        : '';
      return `<div class="b-section">${text}${fields}</div>`;
    }
    case 'context':
      return `<div class="b-context">${(block.elements ?? []).map((e) => (e.type === 'image' ? `<span class="b-image" title="${esc(e.alt_text)}">▣</span>` : `<span>${textObject(e)}</span>`)).join('')}</div>`;
    case 'actions':
      return `<div class="b-actions">${(block.elements ?? []).map((e, j) => elementHtml(e, index, j, message)).join('')}</div>`;
    case 'divider':
      return '<hr class="b-divider">';
    default:
      return `<div class="b-unsupported">[${esc(block.type)} block: not shown by the sandbox]</div>`;
  }
}

function elementHtml(element, blockIndex, elementIndex, message) {
  if (element.type !== 'button') return `<span class="b-unsupported">[${esc(element.type)}]</span>`;
  const style = element.style === 'primary' || element.style === 'danger' ? element.style : '';
  return `<button type="button" class="sl-button ${style}" data-testid="block-button" data-channel="${esc(message.channel)}" data-ts="${esc(message.ts)}" data-block="${blockIndex}" data-element="${elementIndex}">${textObject(element.text)}</button>`;
}

// ---- messages ------------------------------------------------------------------------------------------------------

function visibleToMe(message) {
  return !message.visibleTo || message.visibleTo === view.user;
}

function isPinned(message) {
  return view.state.incidentChannels.some((c) => c.id === message.channel && c.pins.includes(message.ts));
}

function messageHtml(message, replies) {
  const bot = message.user === view.state.bot.id;
  const name = personName(message.user);
  const kind = message.command ? 'command' : message.visibleTo ? 'ephemeral' : 'message';
  const body = message.command
    ? `<div class="command-text"><code>${esc(unescapeSlack(message.text))}</code></div>`
    : message.blocks && message.blocks.length > 0
      ? blocksHtml(message)
      : `<div class="b-text">${mrkdwn(message.text)}</div>`;
  const note = message.command
    ? '<div class="only-you">Only visible to you: the command you sent</div>'
    : message.visibleTo
      ? '<div class="only-you">Only visible to you</div>'
      : isPinned(message)
        ? '<div class="pinned" data-testid="pinned">📌 Pinned in this channel</div>'
        : '';
  const thread =
    replies > 0
      ? `<button type="button" class="replies" data-testid="replies" data-thread="${esc(message.ts)}">${replies} ${replies === 1 ? 'reply' : 'replies'}</button>`
      : '';
  return `<article class="msg ${kind}" data-testid="${kind}" data-ts="${esc(message.ts)}">
    <div class="avatar ${bot ? 'bot' : ''}" aria-hidden="true">${bot ? 'L' : esc(initials(name))}</div>
    <div class="msg-main">
      <div class="meta"><span class="author">${esc(name)}</span>${bot ? '<span class="app-tag">APP</span>' : ''}<time>${time(message.ts)}</time>${message.edits > 0 ? '<span class="edited">(updated)</span>' : ''}</div>
      ${note}${body}${thread}
    </div>
  </article>`;
}

const drawn = new WeakMap();

/** Updates a list in place: only items whose HTML changed are replaced, so clicks and selections survive redraws. */
function patch(container, items) {
  const old = new Map([...container.children].map((el) => [el.dataset.key, el]));
  items.forEach((item, index) => {
    let el = old.get(item.key);
    if (!el || drawn.get(el) !== item.html) {
      const template = document.createElement('template');
      template.innerHTML = item.html.trim();
      const fresh = template.content.firstElementChild;
      fresh.dataset.key = item.key;
      drawn.set(fresh, item.html);
      if (el) el.replaceWith(fresh);
      el = fresh;
    }
    old.delete(item.key);
    if (container.children[index] !== el) container.insertBefore(el, container.children[index] ?? null);
  });
  for (const el of old.values()) el.remove();
}

function patchScrolled(container, items) {
  const atBottom = container.scrollHeight - container.scrollTop - container.clientHeight < 60;
  const before = container.children.length;
  patch(container, items);
  if (atBottom || container.children.length > before) container.scrollTop = container.scrollHeight;
}

function renderMessages() {
  const { messages } = view.state;
  const inChannel = messages.filter((m) => m.channel === view.channel && visibleToMe(m));
  const replies = new Map();
  for (const m of inChannel)
    if (m.threadTs && !m.visibleTo) replies.set(m.threadTs, (replies.get(m.threadTs) ?? 0) + 1);
  const top = inChannel.filter((m) => !m.threadTs);
  const items = top.map((m) => ({ key: String(m.seq), html: messageHtml(m, replies.get(m.ts) ?? 0) }));
  if (items.length === 0) items.push({ key: `welcome-${view.channel}`, html: welcomeHtml() });
  patchScrolled($('messages'), items);

  const pane = $('thread');
  const parent = view.thread && messages.find((m) => m.channel === view.channel && m.ts === view.thread);
  pane.hidden = !parent;
  if (!parent) {
    view.thread = undefined;
    return;
  }
  $('thread-channel').textContent = `# ${channelName(view.channel)}`;
  const threadItems = [parent, ...inChannel.filter((m) => m.threadTs === parent.ts)].map((m) => ({
    key: String(m.seq),
    html: messageHtml(m, 0),
  }));
  patchScrolled($('thread-messages'), threadItems);
}

/** The empty channel's hint: a command only where Lifeline takes commands, else the way there. */
function welcomeHtml() {
  const you = `You are acting as <strong>${esc(personName(view.user))}</strong>.`;
  if (view.channel === view.state.emergencyChannel) {
    return `<div class="welcome" data-testid="welcome">
        <h3>Nothing here yet.</h3>
        <p>${you} Type <code>/incident sev1 Database unreachable</code> below, or pick one under <em>Try</em>, or fire the sample alert (<em>Monitoring</em>, right).</p>
        <p>Then switch who you are (top right) to acknowledge as the on-call engineer, or to approve a restore as the CTO.</p>
        <p>Or click through a region failover: <code>/dr run region-failover --dry-run</code>, then <code>/dr run region-failover</code> (<em>Runbooks</em>, right).</p>
      </div>`;
  }
  const emergency = view.state.emergencyChannel;
  return `<div class="welcome" data-testid="welcome">
      <h3>Nothing here yet.</h3>
      <p>${you} Lifeline takes <code>/incident</code> and <code>/dr</code> only in <button type="button" class="mention channel-link" data-channel-id="${esc(emergency)}">#${esc(channelName(emergency))}</button> (its <code>allowed_channels</code>): here it refuses them, as it would in your workspace. Plain messages are fine.</p>
    </div>`;
}

// ---- the rest of the page --------------------------------------------------------------------------------------------

function setStatus(state, text) {
  const el = $('lifeline-status');
  el.className = `status ${state}`;
  el.textContent = text;
  el.dataset.state = state;
}

function renderChrome() {
  const { people, channels, lifeline, approverRoles } = view.state;
  const select = $('acting-as');
  if (select.options.length !== people.length) {
    select.innerHTML = people
      .map((p) => `<option value="${esc(p.id)}">${esc(p.name)} (${esc(p.title)})</option>`)
      .join('');
  }
  if (!people.some((p) => p.id === view.user)) view.user = people[0].id;
  select.value = view.user;

  const channel = allChannels().find((c) => c.id === view.channel);
  $('channel-title').textContent = `# ${channel.name}`;
  $('channel-title').title = `#${channel.name}`;
  const note = channel.incident
    ? `${channel.topic ? `Topic: ${channel.topic}` : 'No topic yet'} · ${channel.pins.length} pinned · ${channel.members.length} ${channel.members.length === 1 ? 'member' : 'members'}`
    : channel.allowed
      ? 'Lifeline posts incidents here and takes commands here.'
      : "Not in Lifeline's allowed_channels: it refuses commands here.";
  $('channel-note').textContent = note;
  $('channel-note').title = note;
  $('channel-archived').hidden = !channel.archived;
  $('composer-input').disabled = Boolean(channel.archived);
  $('composer-input').placeholder = channel.archived
    ? `#${channel.name} is archived: it can be read, not written to`
    : channel.allowed
      ? `Message #${channel.name}, or a command: /incident … or /dr …`
      : `Message #${channel.name} (commands go to #${channelName(view.state.emergencyChannel)})`;
  $('channels').innerHTML = channels.map(channelItem).join('');
  const made = view.state.incidentChannels;
  $('incident-channels').innerHTML =
    made.length === 0
      ? '<li class="sidebar-note">None yet: Lifeline creates one for each incident.</li>'
      : made.map(channelItem).join('');
  $('people').innerHTML = people
    .map((p) => {
      const approver = p.role && approverRoles.includes(p.role) ? '<span class="tag">approves /dr</span>' : '';
      return `<li><button type="button" data-user-id="${esc(p.id)}" class="${p.id === view.user ? 'active' : ''}">
        <span class="avatar small" aria-hidden="true">${esc(initials(p.name))}</span>
        <span class="person"><span class="person-name">${esc(p.name)}</span><span class="person-title">${esc(p.title)}${p.role ? ` · <code>${esc(p.role)}</code>` : ''} ${approver}</span></span>
      </button></li>`;
    })
    .join('');
  const text = {
    running: `Lifeline running (pid ${lifeline.pid})`,
    starting: 'Lifeline starting…',
    stopped: 'Lifeline stopped',
  }[lifeline.state];
  setStatus(lifeline.state, text);
  $('lifeline-status').title =
    `Lifeline's Request URL (where the sandbox delivers commands and clicks, signed): ${lifeline.requestUrl}`;
}

function channelItem(c) {
  const active = c.id === view.channel ? 'active' : '';
  return `<li><button type="button" data-channel-id="${esc(c.id)}" data-testid="channel-item" class="${active} ${c.archived ? 'archived' : ''}" title="#${esc(c.name)}${c.archived ? ' (archived)' : ''}"><span class="channel-name"># ${esc(c.name)}</span>${c.archived ? '<span class="tag">archived</span>' : ''}</button></li>`;
}

function renderAlert() {
  const { alert } = view.state;
  const last = alert.last;
  const firing = last?.status === 'firing' && last.httpStatus === 200;
  $('alert-fire').textContent = firing ? 'Fire it again' : 'Fire the alert';
  $('alert-resolve').disabled = !firing;
  $('alert-name').innerHTML =
    `<code>${esc(alert.alertname)}</code> <span class="pill busy">${esc(alert.severity)}</span> ${esc(alert.summary)}`;
  $('alert-last').innerHTML = !last
    ? '<span class="muted">Not sent yet.</span>'
    : `<span class="pd-action ${last.status === 'firing' ? 'trigger' : 'resolve'}">${esc(last.status)}</span> <time>${clock(last.at)}</time> → Lifeline: <strong data-testid="alert-outcome">${esc(last.outcome)}</strong>${last.incident ? ` <code>${esc(last.incident)}</code>` : ''}${last.httpStatus === 200 ? '' : ` <span class="muted">(HTTP ${esc(last.httpStatus ?? 'no answer')})</span>`}`;
}

function renderStatuspage() {
  const { statuspage } = view.state;
  const pill = (status) =>
    `<span class="pill ${status === 'operational' || status === 'resolved' ? 'ok' : 'busy'}">${esc(status.replace(/_/g, ' '))}</span>`;
  const components = statuspage.components
    .map(
      (c) =>
        `<li data-testid="sp-component" data-status="${esc(c.status)}">${esc(c.name)} <code>${esc(c.id)}</code> ${pill(c.status)}</li>`,
    )
    .join('');
  const incidents = statuspage.incidents
    .map((i) => {
      const updates = [...i.updates]
        .reverse()
        .map(
          (u) =>
            `<li><time>${clock(u.at)}</time> ${pill(u.status)}${u.body ? ` <span class="sp-body">${esc(u.body)}</span>` : ''}</li>`,
        )
        .join('');
      return `<li data-testid="sp-incident" data-status="${esc(i.status)}"><strong>${esc(i.name)}</strong> ${pill(i.status)}
        <div class="muted small"><a href="${esc(i.shortlink)}" target="_blank" rel="noopener noreferrer">${esc(i.shortlink)}</a> (not a real link)</div>
        <ul class="plain sp-updates">${updates}</ul></li>`;
    })
    .join('');
  $('statuspage').innerHTML = `
    <h3>Components</h3><ul class="plain">${components}</ul>
    <h3>Incidents</h3><ul class="plain">${incidents || '<li class="muted">none: a SEV1 creates one by itself (<code>auto_for: [sev1]</code>), others <code>/incident statuspage</code></li>'}</ul>`;
}

function renderPages() {
  const events = [...view.state.pages].reverse();
  const last = new Map();
  for (const e of view.state.pages) last.set(e.dedupKey, e.action);
  const open = [...last.values()].filter((a) => a === 'trigger').length;
  const acked = [...last.values()].filter((a) => a === 'acknowledge').length;
  const summary = `<li class="pd-summary">Alerts: ${open} open, ${acked} acknowledged, ${last.size - open - acked} resolved</li>`;
  $('pages').innerHTML =
    events.length === 0
      ? '<li class="muted">No events yet: a paging incident (sev1, sev2) triggers the on-call role at once.</li>'
      : summary +
        events
          .map(
            (
              e,
            ) => `<li class="page-event" data-testid="page-event" data-action="${esc(e.action)}" data-dedup-key="${esc(e.dedupKey)}">
              <div><span class="pd-action ${esc(e.action)}">${esc(e.action)}</span> <strong>${esc(e.role)}</strong> <time>${clock(e.at)}</time></div>
              ${e.summary ? `<div class="pd-text">${esc(e.summary)}</div>` : ''}
              <div class="muted small"><code>${esc(e.dedupKey)}</code>${e.severity ? ` · ${esc(e.severity)}` : ''}</div>
            </li>`,
          )
          .join('');
}

/** One region's RDS instances, snapshots and ECS services. */
function regionHtml(region, label) {
  const instances = region.instances
    .map(
      (
        i,
      ) => `<li data-testid="rds-instance" data-region="${esc(region.region)}" data-status="${esc(i.status)}"><code>${esc(i.id)}</code> <span class="pill ${i.status === 'available' ? 'ok' : 'busy'}">${esc(i.status)}</span>
        <div class="muted small">${esc(i.engine)} ${esc(i.engineVersion)} · ${esc(i.instanceClass)}${i.multiAz ? ' · Multi-AZ' : ''}${i.endpoint ? ` · ${esc(i.endpoint.address)}` : ''}</div></li>`,
    )
    .join('');
  const snapshots = region.snapshots
    .map(
      (s) =>
        `<li><code>${esc(s.id)}</code> <span class="pill ${s.status === 'available' ? 'ok' : 'busy'}">${esc(s.status)}</span> <span class="muted small">${esc(s.type)}${s.createdAt ? `, ${age(Date.parse(s.createdAt))}` : ''}</span></li>`,
    )
    .join('');
  const services = region.services
    .map((s) => {
      const primary = s.deployments.find((d) => d.status === 'PRIMARY');
      const rollout = primary?.rolloutState ? ` · rollout ${esc(primary.rolloutState)}` : '';
      const steady = s.running === s.desired && primary?.rolloutState !== 'IN_PROGRESS';
      return `<li data-testid="ecs-service" data-region="${esc(region.region)}" data-running="${s.running}"><code>${esc(s.name)}</code> <span class="pill ${steady ? 'ok' : 'busy'}">${s.running}/${s.desired} running</span><div class="muted small">${esc(s.cluster)}${rollout}</div></li>`;
    })
    .join('');
  return `<h3 class="region">${esc(label)} <code>${esc(region.region)}</code></h3>
    <h4>RDS instances</h4><ul class="plain">${instances || '<li class="muted">none</li>'}</ul>
    <h4>RDS snapshots</h4><ul class="plain">${snapshots || '<li class="muted">none</li>'}</ul>
    <h4>ECS services</h4><ul class="plain">${services}</ul>`;
}

function renderAws() {
  const { aws } = view.state;
  const records = aws.dns.records
    .map(
      (r) =>
        `<li data-testid="dns-record" data-name="${esc(r.name)}" data-value="${esc(r.values.join(' '))}"><code>${esc(r.name)}</code> ${esc(r.type)} → <code>${esc(r.values.join(', '))}</code> <span class="muted small">TTL ${esc(r.ttl)}</span></li>`,
    )
    .join('');
  const calls = aws.calls
    .map(
      (c) =>
        `<li><time>${clock(c.at)}</time> ${esc(c.service.toUpperCase())} <code>${esc(c.action)}</code> <span class="muted small">${esc(c.region)}</span></li>`,
    )
    .join('');
  const secret = aws.secret;
  $('aws').innerHTML = `
    ${regionHtml({ ...aws, region: aws.region }, 'Primary region')}
    ${regionHtml(aws.dr, 'DR region')}
    <h3>Route 53 <code>${esc(aws.dns.zone)}</code></h3><ul class="plain">${records}</ul>
    <h3>Secrets Manager</h3><p class="small"><code>${esc(secret.id)}</code>: <code>DATABASE_HOST</code> = <code data-testid="secret-host">${esc(secret.host ?? '(unreadable)')}</code> <span class="muted">(${secret.versions} ${secret.versions === 1 ? 'version' : 'versions'})</span></p>
    <h3>Latest API calls from Lifeline</h3><ul class="plain calls">${calls || '<li class="muted">none yet</li>'}</ul>`;
}

function renderVercel() {
  const { vercel } = view.state;
  const deployments = vercel.deployments
    .map((d) => {
      const production = d.id === vercel.production;
      return `<li data-testid="vercel-deployment" data-production="${production}" data-state="${esc(d.state)}"><code>${esc(d.url)}</code> <span class="pill ${d.state === 'READY' ? 'ok' : 'busy'}">${esc(d.state)}</span>${production ? ' <span class="tag">production</span>' : ''}
        <div class="muted small">${esc(d.id)}, ${age(d.createdAt)}</div></li>`;
    })
    .join('');
  const env = vercel.env.map((e) => `<li><code>${esc(e.key)}</code> = <code>${esc(e.value)}</code></li>`).join('');
  $('vercel').innerHTML = `
    <p>Project <code>${esc(vercel.project)}</code>${vercel.rolledBack ? ' <span class="pill busy">rolled back: new deployments are not promoted</span>' : ''}</p>
    <h3>Production deployments</h3><ul class="plain">${deployments}</ul>
    <h3>Environment variables</h3><ul class="plain">${env || '<li class="muted">none</li>'}</ul>`;
}

function renderRunbooks() {
  const { runbooks, aws } = view.state;
  const api = aws.api;
  const items = runbooks
    .map(
      (
        r,
      ) => `<li data-testid="runbook"><code>${esc(r.name)}</code> <span class="muted small">${r.steps} steps, ${r.approval === 'each_step' ? 'an approval per step' : 'one approval'}</span>
        <div class="small">${esc(r.title)}</div>
        <div class="runbook-buttons"><button type="button" class="link-button" data-example="/dr run ${esc(r.name)} --dry-run">dry run</button> <button type="button" class="link-button" data-example="/dr run ${esc(r.name)}">run</button></div></li>`,
    )
    .join('');
  $('runbooks').innerHTML = `
    <p class="small" data-testid="api-health" data-healthy="${api.healthy}">The sample API <code>${esc(api.record)}</code>: <span class="pill ${api.healthy ? 'ok' : 'busy'}">${api.healthy ? '200' : '503'}</span> <span class="muted">${esc(api.detail)}</span></p>
    <ul class="plain">${items}</ul>`;
}

function renderShop() {
  const { shop } = view.state;
  const rows = shop.rows
    ? `<span data-testid="shop-users">${shop.rows.users.toLocaleString('en-US')}</span> users, <span data-testid="shop-orders">${shop.rows.orders.toLocaleString('en-US')}</span> orders`
    : '<span class="pill busy">not answering</span> (a restore swapping it in?)';
  const backups = shop.backups
    .map(
      (b) =>
        `<li data-testid="backup"><code class="file-name">${breakable(b.name)}</code>${b.safetyCopy ? ' <span class="tag">safety copy</span>' : ''}<div class="muted small">${size(b.size)}, ${age(Date.parse(b.takenAt))}</div></li>`,
    )
    .join('');
  $('shop').innerHTML = `
    <p><code>${esc(shop.database)}</code>: ${rows}</p>
    <h3>Backups</h3><ul class="plain">${backups || '<li class="muted">none</li>'}</ul>
    <p class="muted small">In <code class="file-name">${breakable(shop.backupsDir)}</code></p>`;
}

function render() {
  // A restarted sandbox has none of the incident channels the page may still show.
  if (!allChannels().some((c) => c.id === view.channel)) view.channel = view.state.emergencyChannel;
  renderChrome();
  renderMessages();
  renderAlert();
  renderPages();
  renderStatuspage();
  renderAws();
  renderVercel();
  renderRunbooks();
  renderShop();
}

// ---- what the user does ----------------------------------------------------------------------------------------------

let toastTimer;
function toast(text) {
  const el = $('toast');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), 6000);
}

/** Slack's confirmation dialog of a button (its `confirm` object); resolves true when confirmed. */
function confirmDialog(confirm) {
  return new Promise((resolve) => {
    $('modal-title').innerHTML = textObject(confirm.title);
    $('modal-text').innerHTML = textObject(confirm.text);
    $('modal-confirm').innerHTML = textObject(confirm.confirm) || 'Yes';
    $('modal-deny').innerHTML = textObject(confirm.deny) || 'Cancel';
    $('modal-confirm').className = confirm.style === 'danger' ? 'danger' : 'primary';
    $('modal').hidden = false;
    const close = (answer) => {
      $('modal').hidden = true;
      $('modal-confirm').onclick = null;
      $('modal-deny').onclick = null;
      resolve(answer);
    };
    $('modal-confirm').onclick = () => close(true);
    $('modal-deny').onclick = () => close(false);
  });
}

async function clickButton(el) {
  const ts = el.dataset.ts;
  const channel = el.dataset.channel;
  const blockIndex = Number(el.dataset.block);
  const elementIndex = Number(el.dataset.element);
  const message = view.state.messages.find((m) => m.channel === channel && m.ts === ts);
  const button = message?.blocks?.[blockIndex]?.elements?.[elementIndex];
  if (!button) return;
  if (button.confirm && !(await confirmDialog(button.confirm))) return;
  el.disabled = true;
  await post('/api/click', { user: view.user, channel, ts, blockIndex, elementIndex });
  el.disabled = false;
}

async function sendAlert(button) {
  button.disabled = true;
  await post('/api/alert', { status: button.dataset.alert });
  button.disabled = false;
  refresh();
}

function setUser(id) {
  view.user = id;
  localStorage.setItem('lifeline-sandbox.user', id);
  render();
}

async function send(input, threadTs) {
  const text = input.value;
  if (text.trim() === '') return;
  input.value = '';
  const answer = await post('/api/type', { user: view.user, channel: view.channel, text, threadTs });
  if (!answer.ok) input.value = text;
}

document.addEventListener('click', (event) => {
  const target = event.target instanceof Element ? event.target : undefined;
  const button = target?.closest('button');
  if (!button) return;
  if (button.dataset.alert) void sendAlert(button);
  else if (button.classList.contains('sl-button')) void clickButton(button);
  else if (button.dataset.thread) {
    view.thread = button.dataset.thread;
    render();
  } else if (button.dataset.channelId) {
    view.channel = button.dataset.channelId;
    view.thread = undefined;
    render();
  } else if (button.dataset.userId) setUser(button.dataset.userId);
  else if (button.dataset.example) {
    // Commands work only in allowed_channels: an example picked elsewhere is typed where it works.
    if (!allChannels().find((c) => c.id === view.channel)?.allowed) {
      view.channel = view.state.emergencyChannel;
      view.thread = undefined;
      render();
    }
    $('composer-input').value = button.dataset.example;
    $('composer-input').focus();
  }
});

$('acting-as').addEventListener('change', (event) => setUser(event.target.value));
$('thread-close').addEventListener('click', () => {
  view.thread = undefined;
  render();
});
$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  void send($('composer-input'), undefined);
});
$('thread-composer').addEventListener('submit', (event) => {
  event.preventDefault();
  void send($('thread-input'), view.thread);
});
$('examples').innerHTML = EXAMPLES.map(
  (e) => `<li><button type="button" data-example="${esc(e)}"><code>${esc(e)}</code></button></li>`,
).join('');

// The server says when something changed; the row counts and ages change on their own, so look now and then too.
new EventSource('/api/events').onmessage = () => refresh();
setInterval(refresh, 5000);
refresh();
