// SwiftChat's browser client. It uses only the public API, like any other
// client: REST for accounts, rooms, members and history, the WebSocket for
// live chat. Everything a user typed is put on the page with textContent,
// never as HTML, and in a bidi isolate (a <bdi>, or `unicode-bidi: isolate`
// in chat.css), so that control characters such as U+202E cannot reorder
// the words around it. Nothing here is inline script or style: the server
// sends a Content-Security-Policy that forbids both.
'use strict';

const $ = (id) => document.getElementById(id);

const GROUP_SECONDS = 5 * 60;       // a message this soon after its author's last one shares its name
// The server passes one `typing` per user per 2 s and drops the rest; a little
// more than that here, so that a frame arriving early never gets dropped.
const TYPING_EVERY_MS = 2200;       // we tell the room we are typing at most this often
const TYPING_SHOWN_MS = 4000;       // and show someone else's typing for this long
const TYPING_NEXT_MS = TYPING_EVERY_MS + 1000;  // by then someone still typing has told us again
const READ_DELAY_MS = 2000;         // mark_read at most this often: each is a write, for every reader of a busy room
const ROOMS_REFRESH_MS = 300;       // room_activity from many rooms: one GET /rooms for them all
const RESULTS = 20;                 // search results per request
const EXCERPT = 160;                // characters of a long message shown in a search result
const REFRESH_BEFORE_MS = 5 * 60 * 1000;  // a token is renewed this long before it expires
const PAGE = 50;                    // messages per history page
const SESSION_ENDED = 4001;         // close code: logged out elsewhere, password changed, or too old

const state = {
  token: sessionStorage.getItem('swiftchat.token'),
  user: JSON.parse(sessionStorage.getItem('swiftchat.user') || 'null'),
  roomId: sessionStorage.getItem('swiftchat.room'),  // the room to be in, kept across reloads
  joinedRoomId: null,  // the room this connection is in now
  rejoinRoomId: null,  // the room a dropped connection was in: rejoined with `since`
  rooms: [],
  members: [],
  socket: null,
  authenticated: false, // this socket's first `auth` was answered; later answers are for renewed tokens
  wsUrl: null,         // where the WebSocket is, as GET /info says
  retryDelay: 500,     // ms; doubles after each failed reconnect, up to 10 s
  // The conversation on screen: messages (by id, oldest first) and notices.
  items: [],
  seenIds: new Set(),
  reachedStart: false, // the first message of the room is on screen
  loadingOlder: false,
  pendingLive: null,   // live messages that arrive while history is loading
  lastIdByRoom: JSON.parse(sessionStorage.getItem('swiftchat.lastIds') || '{}'),
  unsent: [],          // {client_id, content} sent but not yet confirmed: resent after a reconnect
  typing: new Map(),   // user_id -> {username, heardAt, until}
  lastTypingSent: 0,
  refreshTimer: null,
  role: 'user',        // from GET /users/me: 'user' or 'admin'
  moderating: false,   // may delete anyone's message here and remove members (see moderating())
  inDirectRoom: false, // the room here is a direct room: no "Message" or "Remove" beside its two
  editing: null,       // {id, draft, error}: the message being edited on this page
  confirmingDelete: null, // the id of the message whose "Delete" waits for "Confirm delete"
  users: [],           // the Admin view's accounts
  settingPasswordFor: null, // the user id whose "Set password" form is open there
  roomsAsked: 0,       // GET /rooms refreshes started: only the newest one's answer is drawn
  roomsInFlight: 0,    // the refresh on its way, if any (its number)
  roomsTimer: null,    // a refresh of the room list, soon (refreshRoomsSoon)
  readTimer: null,     // a mark_read, soon (readSoon)
  connectedBefore: false, // this page has had a connection: a new one may have missed activity
  jumpTo: null,        // {roomId, messageId}: a search result to show when its room's history loads
  search: null,        // {query, results, more}: the search results shown
  notify: localStorage.getItem('swiftchat.notify') === 'on',  // turned on with "Enable notifications"
  notified: new Set(), // message ids already notified (a mention may also be a direct message)
  blocked: new Map(),  // user id -> user: their messages wait behind "Blocked message - show"
  revealed: new Set(), // ids of blocked users' messages shown all the same
  reporting: null,     // the id of the message the report dialog is about
  openReports: [],     // reports waiting for us as a moderator, newest first ("Reports" counts them)
  listedReports: [],   // what the Reports view lists when it shows other than open ones
  reportsHeard: null,  // reports told live while GET /reports is on its way
  changingPassword: false, // POST /auth/password is on its way: a 4001 meanwhile is its doing
  awaitingSession: false,  // our socket was closed by that change; its answer brings the new session
};

// -- REST -------------------------------------------------------------------

async function api(method, path, body) {
  const token = state.token;
  const headers = {'Content-Type': 'application/json'};
  if (token) headers.Authorization = 'Bearer ' + token;
  const response = await fetch('/api/v1' + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const reply = await response.json();
  // "Invalid credentials" is about a password just typed (at login, or the
  // current one when changing it); any other 401 means the session is over,
  // unless the page has moved to a new session while this request was out.
  if (response.status === 401 && token && token === state.token && reply.message !== 'Invalid credentials') {
    logout('Your session has expired. Please log in again.');
  }
  if (!reply.success) throw new Error(reply.error || reply.message);
  return reply.data;
}

// -- small view helpers -----------------------------------------------------

function showError(text) {
  $('error').textContent = text;
  $('error').hidden = !text;
}

function setStatus(text) {
  $('status').textContent = text;
}

function setConnected(connected) {
  const inRoom = connected && Boolean(state.joinedRoomId);
  $('message-input').disabled = !inRoom;
  $('send-button').disabled = !inRoom;
  $('leave-room').disabled = !inRoom;
  $('show-members').disabled = !state.joinedRoomId;
}

function showPane(pane) {
  $('chat-view').dataset.pane = pane;  // only a phone-sized screen shows one pane at a time
}

function newClientId() {
  // crypto.randomUUID exists only on https or localhost; a lab machine's address is neither.
  return (crypto.randomUUID && window.isSecureContext)
    ? crypto.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

// Text a user wrote, as an element of its own bidi isolate.
function isolated(text, className) {
  const bdi = document.createElement('bdi');
  if (className) bdi.className = className;
  bdi.textContent = text;
  return bdi;
}

// The same for plain strings such as tooltips: FIRST STRONG ISOLATE ... POP
// DIRECTIONAL ISOLATE.
function isolatedString(text) {
  return `\u2068${text}\u2069`;
}

// An element with these children (strings become text nodes, never HTML).
function element(tag, ...children) {
  const made = document.createElement(tag);
  made.append(...children);
  return made;
}

// -- what a message may hold: code, emphasis, links and @you ---------------------
// Each piece is built with createElement and text nodes: nothing a user
// wrote is ever parsed as HTML, so "<b>" in a message is just those letters.

// ```code```, on lines of its own or not; a first line of one word (```python) names its language.
const FENCE = /```(?:[\w+#.-]*\n)?([\s\S]*?)\n?```/g;

// Looked for left to right; where two could start at the same place, the
// first listed wins. The names (an @mention) are protocol.py's rule: "@"
// and a username's characters, not inside a longer word.
const INLINE = new RegExp([
  /`(?<code>[^`\n]+)`/.source,
  /\*\*(?<strong>[^\s*](?:[\s\S]*?[^\s])?)\*\*/.source,
  /\*(?<em>[^\s*](?:[^*]*?[^\s*])?)\*/.source,
  /(?<url>https?:\/\/[^\s<>]+)/.source,
  /(?<![\p{L}\p{N}_.@-])@(?<name>[A-Za-z0-9_.-]+)(?![\p{L}\p{N}_@])/.source,
].join('|'), 'giu');

// A message's text as nodes: fenced blocks first (nothing inside them is
// formatted), then the rest. The line break beside a block is the block's own.
function formatted(text) {
  const nodes = [];
  let at = 0;
  for (const fence of text.matchAll(FENCE)) {
    nodes.push(...inline(text.slice(at, fence.index).replace(/\n$/, '')), element('pre', fence[1]));
    at = fence.index + fence[0].length;
    if (text[at] === '\n') at += 1;
  }
  nodes.push(...inline(text.slice(at)));
  return nodes;
}

// Code, bold, italic, links and @you within a stretch of text. Bold and
// italic may hold the others; code holds only its letters.
function inline(text) {
  const pattern = new RegExp(INLINE.source, INLINE.flags);  // its own lastIndex: this recurses
  const nodes = [];
  let at = 0;
  for (let match; (match = pattern.exec(text));) {
    const [node, length] = inlineNode(match);
    if (!node) continue;  // an @name that is not ours, or a URL that is not one: plain text
    nodes.push(text.slice(at, match.index), node);
    at = pattern.lastIndex = match.index + length;
  }
  nodes.push(text.slice(at));
  return nodes.filter((node) => node !== '');
}

// The element for one INLINE match, and how much of the text it took.
function inlineNode(match) {
  const {code, strong, em, url, name} = match.groups;
  if (code !== undefined) return [element('code', code), match[0].length];
  if (strong !== undefined) return [element('strong', ...inline(strong)), match[0].length];
  if (em !== undefined) return [element('em', ...inline(em)), match[0].length];
  if (url !== undefined) return linkNode(url);
  // "@bob." at the end of a sentence mentions bob, as on the server.
  const mine = state.user.username.toLowerCase();
  const written = name.toLowerCase();
  if (written === mine) return [element('mark', match[0]), match[0].length];
  if (written.replace(/[.-]+$/, '') === mine) return [element('mark', `@${name.slice(0, mine.length)}`), mine.length + 1];
  return [null, 0];
}

// An http or https link that opens in a new tab and tells the other site
// nothing of this page. Punctuation that ends a sentence stays outside it,
// and so does a closing bracket without its opening one ("(see https://a.b/c)").
function linkNode(written) {
  let text = written;
  for (;;) {
    const last = text.at(-1);
    const unbalanced = last === ')' && text.split('(').length < text.split(')').length;
    if (!unbalanced && !'.,;:!?\'"*_'.includes(last)) break;
    text = text.slice(0, -1);
  }
  let url;
  try {
    url = new URL(text);
  } catch (error) {
    return [null, 0];
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return [null, 0];  // the pattern says so too
  const link = element('a', isolated(text));
  const host = lookAlikeHost(text, url);
  if (host) link.append(' (', isolated(host, 'host'), ')');
  link.href = url.href;
  link.target = '_blank';
  link.rel = 'noopener noreferrer';
  return [link, text.length];
}

// A host written with letters beyond ASCII may pass for another site
// ("exаmple.com" with a Cyrillic а): its punycode form, where the browser
// really goes, is shown beside it. The host as written is what follows
// "//", up to the path, without any "user@" before it.
function lookAlikeHost(text, url) {
  const authority = text.slice(url.protocol.length + 2).split(/[/?#\\]/)[0];
  const host = authority.slice(authority.lastIndexOf('@') + 1);
  return /[^\x00-\x7f]/.test(host) ? url.hostname : null;
}

// -- the conversation ----------------------------------------------------------

function dayLabel(timestamp) {
  const day = new Date(timestamp * 1000).toDateString();
  const today = new Date();
  if (day === today.toDateString()) return 'Today';
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (day === yesterday.toDateString()) return 'Yesterday';
  return new Date(timestamp * 1000).toLocaleDateString(undefined, {weekday: 'long', year: 'numeric', month: 'long', day: 'numeric'});
}

// The elements for one item, given the message shown just before it (for
// the day separator and for grouping an author's consecutive messages).
function elementsFor(item, previous) {
  if (item.kind === 'notice') return [noticeElement(item)];
  const elements = [];
  const newDay = !previous || dayLabel(previous.timestamp) !== dayLabel(item.timestamp);
  if (newDay) {
    const separator = document.createElement('li');
    separator.className = 'day';
    separator.textContent = dayLabel(item.timestamp);
    elements.push(separator);
  }
  elements.push(messageElement(item, continues(item, previous)));
  return elements;
}

// A message soon after its author's last one, on the same day, goes without their name.
function continues(item, previous) {
  return Boolean(previous) && dayLabel(previous.timestamp) === dayLabel(item.timestamp)
    && previous.user_id === item.user_id && item.timestamp - previous.timestamp < GROUP_SECONDS;
}

// A notice's parts are the page's own words, or {user: text} for what a
// user wrote (a name), which goes in an isolate of its own.
function noticeElement(item) {
  const li = document.createElement('li');
  li.className = 'notice';
  li.append(...item.parts.map((part) => (typeof part === 'string' ? part : isolated(part.user))));
  return li;
}

// One message: who and when (unless it continues its author's run), its
// text or, while it is being edited here, the editor, and its actions.
function messageElement(item, continued) {
  const li = document.createElement('li');
  li.className = 'message' + (item.user_id === state.user.id ? ' mine' : '') + (continued ? ' continued' : '');
  li.dataset.id = item.id ?? '';
  li.tabIndex = -1;  // a tap or click focuses the message, and that shows its actions (chat.css)
  if (hiddenAsBlocked(item)) {
    li.classList.add('blocked');
    li.append(controlButton('Blocked message - show', 'show-blocked'));
    return li;
  }
  const when = new Date(item.timestamp * 1000);
  li.title = `${isolatedString(item.username)}, ${when.toLocaleString()}`;
  if (!continued) li.append(metaFor(item, when));
  if (state.editing && state.editing.id === item.id) {
    li.append(editorFor());
    return li;
  }
  const content = document.createElement('p');
  content.className = 'content';
  content.dir = 'auto';  // a message in Arabic or Hebrew reads right to left
  content.append(...formatted(item.content));
  li.append(content);
  if (continued && item.edited_at) li.append(editedMark(item));  // no time to stand beside
  const actions = actionsFor(item);
  if (actions) li.append(actions);
  return li;
}

function metaFor(item, when) {
  const time = document.createElement('time');
  time.dateTime = when.toISOString();
  time.textContent = when.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'});
  const meta = document.createElement('span');
  meta.className = 'meta';
  meta.append(isolated(item.username, 'author'), ' · ', time);
  if (item.edited_at) meta.append(' ', editedMark(item));
  return meta;
}

function editedMark(item) {
  const mark = document.createElement('span');
  mark.className = 'edited';
  mark.textContent = '(edited)';
  mark.title = `Edited ${new Date(item.edited_at * 1000).toLocaleString()}`;
  return mark;
}

function lastMessage(items) {
  for (let i = items.length - 1; i >= 0; i--) if (items[i].kind === 'message') return items[i];
  return null;
}

function renderConversation() {
  const focused = focusInConversation();
  const list = $('messages');
  const fromBottom = list.scrollHeight - list.scrollTop;
  const elements = [];
  if (state.reachedStart && state.joinedRoomId && state.items.length > 0) {
    const start = document.createElement('li');
    start.className = 'notice';
    start.textContent = 'This is the beginning of the room.';
    elements.push(start);
  }
  let previous = null;
  for (const item of state.items) {
    elements.push(...elementsFor(item, previous));
    if (item.kind === 'message') previous = item;
  }
  list.replaceChildren(...elements);
  list.scrollTop = list.scrollHeight - fromBottom;  // older pages above do not move the view
  showConversationEmpty();
  restoreFocus(focused);
}

// Rendering replaces the list's elements; a keyboard user inside it (on a
// message's button, or typing in its editor) must not be thrown out.
function focusInConversation() {
  const active = document.activeElement;
  const li = active && active.closest('#messages li[data-id]');
  if (!li) return null;
  return {id: li.dataset.id, control: active.dataset.control,
          selection: active.dataset.control === 'editor' ? [active.selectionStart, active.selectionEnd] : null};
}

function restoreFocus(focused) {
  if (!focused) return;
  const li = $('messages').querySelector(`li[data-id="${focused.id}"]`);
  const target = li ? (li.querySelector(`[data-control="${focused.control}"]`) || li) : $('message-input');
  target.focus({preventScroll: true});
  if (focused.selection && target.dataset.control === 'editor') target.setSelectionRange(...focused.selection);
}

function showConversationEmpty() {
  const empty = $('conversation-empty');
  empty.textContent = state.joinedRoomId
    ? 'No messages yet. Say hello!' : 'Pick a room on the left, or create one, to start chatting.';
  empty.hidden = state.items.length > 0 || (state.joinedRoomId && !state.reachedStart);
}

function nearBottom() {
  const list = $('messages');
  return list.scrollHeight - list.scrollTop - list.clientHeight < 40;
}

function scrollToBottom() {
  const list = $('messages');
  list.scrollTop = list.scrollHeight;
  $('new-messages').hidden = true;
}

// Append at the bottom; a reader scrolled up is not moved, but told.
function appendItem(item, mine) {
  const follow = mine || nearBottom();
  const elements = elementsFor(item, lastMessage(state.items));
  state.items.push(item);
  $('messages').append(...elements);
  showConversationEmpty();
  if (follow) scrollToBottom();
  else $('new-messages').hidden = false;
}

// A notice: see noticeElement for its parts.
function addNotice(...parts) {
  appendItem({kind: 'notice', parts}, false);
}

function rememberLastId(id) {
  if (!state.joinedRoomId || id == null) return;
  if ((state.lastIdByRoom[state.joinedRoomId] || 0) >= id) return;
  state.lastIdByRoom[state.joinedRoomId] = id;
  sessionStorage.setItem('swiftchat.lastIds', JSON.stringify(state.lastIdByRoom));
}

// One message from history or from the socket; shown once, by its id.
function addMessage(message) {
  if (message.id != null) {
    if (state.seenIds.has(message.id)) return;
    state.seenIds.add(message.id);
    rememberLastId(message.id);
  }
  typingAfterMessage(message.user_id);
  appendItem({kind: 'message', ...message}, message.user_id === state.user.id);
  if (document.visibilityState === 'visible') readSoon();
  else countUnseen(message);
}

function fromHistory(message) {
  return {id: message.id, user_id: message.user_id, username: message.sender.username,
          content: message.content, timestamp: message.timestamp, edited_at: message.edited_at};
}

async function loadHistory(roomId) {
  state.items = [];
  state.seenIds = new Set();
  state.reachedStart = false;
  state.editing = state.confirmingDelete = null;
  state.pendingLive = [];  // live frames wait until history is on screen, then follow it
  const target = state.jumpTo && state.jumpTo.roomId === roomId ? state.jumpTo.messageId : null;
  state.jumpTo = null;
  let page = [];
  try {
    [page, state.reachedStart] = target === null ? await newestPage(roomId) : await historyBackTo(roomId, target);
  } catch (error) {
    showError(error.message);
  }
  if (roomId !== state.joinedRoomId) return;
  for (const message of page) {
    state.seenIds.add(message.id);
    rememberLastId(message.id);
    state.items.push({kind: 'message', ...fromHistory(message)});
  }
  renderConversation();
  scrollToBottom();
  const pending = state.pendingLive;
  state.pendingLive = null;
  pending.forEach(applyMessageFrame);
  if (target !== null) showFound(target);
  fillTheView();
  readSoon();
}

// The newest page of a room's history, and whether it is all of it.
async function newestPage(roomId) {
  const page = (await api('GET', `/messages?room_id=${encodeURIComponent(roomId)}&limit=${PAGE}`)).messages;
  return [page, page.length < PAGE];
}

// A search result's room, from its newest message back to the result and a
// page before it. GET /messages pages only backwards, and what is on screen
// must run unbroken to the newest message (live ones join it there), so an
// old result costs a request per 100 messages since.
async function historyBackTo(roomId, targetId) {
  let messages = [];
  for (;;) {
    const before = messages.length ? `&before=${messages[0].id}` : '';
    const page = (await api('GET', `/messages?room_id=${encodeURIComponent(roomId)}&limit=100${before}`)).messages;
    messages = [...page, ...messages];
    if (page.length < 100) return [messages, true];
    if (messages.filter((message) => message.id < targetId).length >= PAGE - 1) return [messages, false];
  }
}

// A search result on screen: in the middle of the view, marked for a moment
// (chat.css's .found), and focused, so that a screen reader reads it next.
function showFound(id) {
  const li = $('messages').querySelector(`li[data-id="${id}"]`);
  if (!li) return showError('That message has been deleted.');
  li.scrollIntoView({block: 'center'});
  li.classList.add('found');
  li.addEventListener('animationend', () => li.classList.remove('found'), {once: true});
  li.focus({preventScroll: true});
}

// Scrolling to the top fetches the page before the oldest message shown.
async function loadOlder() {
  if (state.loadingOlder || state.reachedStart || !state.joinedRoomId) return;
  const oldest = state.items.find((item) => item.kind === 'message');
  if (!oldest) return;
  const roomId = state.joinedRoomId;
  state.loadingOlder = true;
  try {
    const page = (await api('GET', `/messages?room_id=${encodeURIComponent(roomId)}&limit=${PAGE}&before=${oldest.id}`)).messages;
    if (roomId !== state.joinedRoomId) return;
    state.reachedStart = page.length < PAGE;
    const older = page.filter((m) => !state.seenIds.has(m.id)).map((m) => ({kind: 'message', ...fromHistory(m)}));
    older.forEach((m) => state.seenIds.add(m.id));
    state.items = [...older, ...state.items];
    renderConversation();
  } catch (error) {
    showError(error.message);
  } finally {
    state.loadingOlder = false;
  }
  fillTheView();
}

// A tall window may show a whole page with room to spare: keep loading.
function fillTheView() {
  const list = $('messages');
  if (list.scrollHeight <= list.clientHeight && !state.reachedStart) loadOlder();
}

// -- editing and deleting messages --------------------------------------------
// Both go over REST (PATCH and DELETE /messages/{id}) rather than the
// socket's edit_message and delete_message: the answer belongs to the
// request, so an error ("You cannot change this message") is shown beside
// the editor it is about. Everyone in the room, this page included, also
// hears message_updated or message_deleted; applying either twice is harmless.

// The room's creator and admins may delete anyone's message and remove members.
// Not in a direct room: neither of its two is in charge of the other (and
// admins do not see it at all).
function moderating() {
  const room = currentRoom();
  if (room && room.kind === 'direct') return false;
  return state.role === 'admin' || Boolean(room && room.creator_id === state.user.id);
}

function currentRoom() {
  return state.rooms.find((r) => r.id === state.joinedRoomId);
}

// The room list and the role arrive after the conversation may be on
// screen; what they allow is redrawn only when it changes.
function permissionsChanged() {
  showAddMember(mayAddMembers());
  const direct = currentRoom()?.kind === 'direct';
  const moderatingChanged = moderating() !== state.moderating;
  if (!moderatingChanged && direct === state.inDirectRoom) return;
  state.inDirectRoom = direct;
  if (moderatingChanged) {
    state.moderating = !state.moderating;
    renderConversation();
  }
  renderMembers();
}

// "Edit" on one's own messages; "Delete" on those, and on all for moderators;
// "Report" on everyone else's.
function actionsFor(item) {
  if (item.id == null) return null;  // never saved: nothing to change
  if (state.confirmingDelete === item.id) return deleteQuestion(item);
  const mine = item.user_id === state.user.id;
  const buttons = [];
  if (mine) buttons.push(controlButton('Edit', 'edit'));
  if (mine || moderating()) buttons.push(controlButton('Delete', 'delete'));
  if (!mine) buttons.push(controlButton('Report', 'report'));
  const actions = document.createElement('div');
  actions.className = 'actions';
  actions.append(...buttons);
  return actions;
}

// Asked in the page (window.confirm would stop every script, the socket's included).
function deleteQuestion(item) {
  const question = document.createElement('span');
  question.id = `delete-question-${item.id}`;
  question.textContent = 'Delete this message?';
  const actions = document.createElement('div');
  actions.className = 'actions asking';
  actions.setAttribute('role', 'group');
  actions.setAttribute('aria-labelledby', question.id);
  actions.append(question, controlButton('Confirm delete', 'confirm-delete', 'danger'),
                 controlButton('Cancel', 'cancel-delete'));
  return actions;
}

// A button that one listener on its list acts on, by data-control.
function controlButton(text, control, className) {
  const button = document.createElement('button');
  button.type = 'button';
  button.textContent = text;
  button.dataset.control = control;
  if (className) button.className = className;
  return button;
}

function editorFor() {
  const input = document.createElement('textarea');
  input.dataset.control = 'editor';
  input.setAttribute('aria-label', 'Edit message');
  input.maxLength = 4000;
  input.rows = 3;
  input.dir = 'auto';
  input.value = state.editing.draft;
  const error = document.createElement('span');
  error.className = 'edit-error';
  error.setAttribute('role', 'alert');
  error.textContent = state.editing.error;
  error.hidden = !state.editing.error;
  const save = controlButton('Save', 'save');
  save.type = 'submit';
  const buttons = document.createElement('div');
  buttons.className = 'buttons';
  buttons.append(save, controlButton('Cancel', 'cancel-edit'));
  const form = document.createElement('form');
  form.className = 'editor';
  form.append(input, error, buttons);
  return form;
}

function findMessage(id) {
  return state.items.find((item) => item.kind === 'message' && item.id === id);
}

// One message drawn again where it is (edited, or opening its editor or
// question): the list is aria-live, and rebuilding all of it would have
// a screen reader read the whole conversation again.
function redrawMessage(id) {
  const index = state.items.findIndex((item) => item.kind === 'message' && item.id === id);
  const old = $('messages').querySelector(`li[data-id="${id}"]`);
  if (index < 0 || !old) return;
  const focused = focusInConversation();
  old.replaceWith(elementsFor(state.items[index], lastMessage(state.items.slice(0, index))).pop());
  restoreFocus(focused);
}

function focusControl(id, control) {
  const element = $('messages').querySelector(`li[data-id="${id}"] [data-control="${control}"]`);
  if (element) element.focus();
  return element;
}

function startEditing(id) {
  const item = findMessage(id);
  if (!item) return;
  const asked = state.confirmingDelete;
  state.editing = {id, draft: item.content, error: ''};
  state.confirmingDelete = null;
  if (asked != null) redrawMessage(asked);
  redrawMessage(id);
  const input = focusControl(id, 'editor');
  input.setSelectionRange(input.value.length, input.value.length);
}

function stopEditing() {
  const {id} = state.editing;
  state.editing = null;
  redrawMessage(id);
  focusControl(id, 'edit');
}

async function saveEdit() {
  const {id, draft} = state.editing;
  if (draft === findMessage(id)?.content) return stopEditing();
  try {
    const message = await api('PATCH', `/messages/${id}`, {content: draft});
    const wasFocused = document.activeElement.closest(`#messages li[data-id="${id}"]`);
    if (state.editing && state.editing.id === id) state.editing = null;
    applyUpdate(message);
    if (wasFocused) focusControl(id, 'edit');
  } catch (error) {
    showEditError(id, error.message);
  }
}

function showEditError(id, text) {
  if (!state.editing || state.editing.id !== id) return showError(text);
  state.editing.error = text;
  const error = $('messages').querySelector(`li[data-id="${id}"] .edit-error`);
  error.textContent = text;
  error.hidden = false;
}

function askToDelete(id) {
  const asked = state.confirmingDelete;
  state.confirmingDelete = id;
  if (asked != null) redrawMessage(asked);
  redrawMessage(id);
  focusControl(id, 'confirm-delete');
}

function cancelDelete() {
  const id = state.confirmingDelete;
  state.confirmingDelete = null;
  redrawMessage(id);
  focusControl(id, 'delete');
}

async function deleteMessage(id) {
  try {
    removeMessage(await api('DELETE', `/messages/${id}`));
  } catch (error) {
    showError(error.message);
    if (state.confirmingDelete === id) cancelDelete();
  }
}

// message_updated, or the answer to our own edit: the new text, "(edited)".
function applyUpdate(data) {
  const item = findMessage(data.id);
  if (!item) return;
  item.content = data.content;
  item.edited_at = data.edited_at;
  redrawMessage(data.id);
}

// message_deleted, or the answer to our own delete. Its id stays seen, so
// that nothing brings it back.
function removeMessage(data) {
  const index = state.items.findIndex((item) => item.kind === 'message' && item.id === data.id);
  if (index < 0) return;
  const [gone] = state.items.splice(index, 1);
  if (state.editing && state.editing.id === gone.id) state.editing = null;
  if (state.confirmingDelete === gone.id) state.confirmingDelete = null;
  const li = $('messages').querySelector(`li[data-id="${gone.id}"]`);
  const hadFocus = li && li.contains(document.activeElement);
  if (li) dropMessageElement(li, state.items.slice(index).find((item) => item.kind === 'message'));
  showConversationEmpty();
  if (hadFocus && !$('message-input').disabled) $('message-input').focus();
}

// Takes a message's element out, with the day's separator if no message of
// that day follows; the next message may now start its author's run.
function dropMessageElement(li, next) {
  const separator = li.previousElementSibling;
  li.remove();
  if (separator && separator.classList.contains('day')
      && !(next && dayLabel(next.timestamp) === separator.textContent)) separator.remove();
  if (!next) return;
  const nextLi = $('messages').querySelector(`li[data-id="${next.id}"]`);
  const previous = lastMessage(state.items.slice(0, state.items.indexOf(next)));
  if (nextLi && nextLi.classList.contains('continued') !== continues(next, previous)) redrawMessage(next.id);
}

// A live frame about the room's messages, in the order the server sent it.
function applyMessageFrame(data) {
  if (data.type === 'message_updated') applyUpdate(data);
  else if (data.type === 'message_deleted') removeMessage(data);
  else addMessage(data);
}

// What each button in a message does, by its data-control (one listener on the list).
const MESSAGE_CONTROLS = {
  'show-blocked': showBlockedMessage,
  edit: startEditing,
  'cancel-edit': stopEditing,
  delete: askToDelete,
  'confirm-delete': deleteMessage,
  'cancel-delete': cancelDelete,
  report: askToReport,
};

// -- typing -------------------------------------------------------------------

function renderTyping() {
  const now = Date.now();
  for (const [userId, who] of state.typing) if (who.until <= now) state.typing.delete(userId);
  const names = [...state.typing.values()].map((who) => isolated(who.username));
  const line = names.flatMap((name, i) => (i === 0 ? [name] : [', ', name]));
  if (names.length > 0) line.push(names.length === 1 ? ' is typing…' : ' are typing…');
  $('typing').replaceChildren(...line);
}

function showTyping(data) {
  if (data.room_id !== state.joinedRoomId || data.user_id === state.user.id) return;
  if (state.blocked.has(data.user_id)) return;  // what they write is hidden; so is their typing
  const now = Date.now();
  state.typing.set(data.user_id, {username: data.username, heardAt: now, until: now + TYPING_SHOWN_MS});
  renderTyping();
  setTimeout(renderTyping, TYPING_SHOWN_MS + 50);
}

function clearTyping(userId) {
  if (state.typing.delete(userId)) renderTyping();
}

// Someone who was typing sent their message. They may type on (a reply, a
// second thought), but the server passes at most one `typing` of theirs
// per 2 s, so it cannot tell us at once: clearing their line here made it
// vanish for up to 2 s exactly while the next message was being typed.
// Instead it stays until their next `typing` would have come, and goes
// then if none did.
function typingAfterMessage(userId) {
  const who = state.typing.get(userId);
  if (!who) return;
  who.until = Math.min(who.until, who.heardAt + TYPING_NEXT_MS);
  setTimeout(renderTyping, who.until - Date.now() + 50);
}

// Not sooner after sending a message either: the server would drop that
// `typing` and the next one would wait on it (see typingAfterMessage).
function tellTyping() {
  const now = Date.now();
  if (now - state.lastTypingSent < TYPING_EVERY_MS || !state.joinedRoomId) return;
  state.lastTypingSent = now;
  send({type: 'typing'}, true);
}

// -- signing in and out, and staying signed in ---------------------------------

function saveSession(data) {
  const previousSession = tokenClaims(state.token).sid;
  state.token = data.token;
  state.user = {id: data.id, username: data.username};
  sessionStorage.setItem('swiftchat.token', state.token);
  sessionStorage.setItem('swiftchat.user', JSON.stringify(state.user));
  scheduleRefresh();
  carryConnectionOver(previousSession);
}

// A token of the connection's own session (a refresh) is sent on it: the
// server keeps it in its room, and onAuthenticated ignores the answer. A
// token of a new session (a new password) needs a new connection, as after
// a drop: the old one's session has ended, and the server closes it.
function carryConnectionOver(previousSession) {
  if (tokenClaims(state.token).sid === previousSession) send({type: 'auth', token: state.token}, true);
  else if (state.socket || state.awaitingSession) reconnectNow();
}

// What a token says of itself (sid, exp, ...); {} for one that is not a JWT.
function tokenClaims(token) {
  try {
    return JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
  } catch (error) {
    return {};
  }
}

// A token lives an hour; ask for a new one a few minutes before it ends,
// so a page left open stays signed in.
function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  const expires = tokenClaims(state.token).exp * 1000;
  if (!expires) return;
  const wait = Math.max(10_000, expires - Date.now() - REFRESH_BEFORE_MS);
  state.refreshTimer = setTimeout(async () => {
    try {
      saveSession(await api('POST', '/auth/refresh'));
    } catch (error) {
      showError('Could not renew your session: ' + error.message);
    }
  }, wait);
}

// A program that embeds the chat signs its own users in: it opens the page
// with a token of theirs in the URL's fragment (#token=...), which a browser
// never sends to any server (README, "Embedding"). The token leaves the
// address bar and the history at once, before anything can fail.
function tokenFromFragment() {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (token) history.replaceState(history.state, '', location.pathname + location.search);
  return token;
}

// Then it is kept as a login's token is; GET /users/me says whose it is.
async function signInWithToken(token) {
  showError('');
  state.token = token;
  try {
    const {user} = await api('GET', '/users/me');
    if (!state.user || state.user.id !== user.id) {  // another user's room and place are not ours
      sessionStorage.clear();
      Object.assign(state, {roomId: null, lastIdByRoom: {}, unsent: []});
    }
    saveSession({token, id: user.id, username: user.username});
    showChat();
  } catch (error) {
    if (state.token) logout(error.message);  // else a 401 signed the page out, saying why
  }
}

async function signIn(path) {
  showError('');
  try {
    saveSession(await api('POST', path, {username: $('username').value, password: $('password').value}));
    $('password').value = '';
    showChat();
  } catch (error) {
    showError(error.message);
  }
}

// "Log out": the server ends the session, then the page forgets it. Our
// socket goes first, so that neither its close nor the server's 4001 is
// taken for a dropped connection.
async function endSession() {
  const socket = state.socket;
  state.socket = null;
  if (socket) socket.close(1000);
  try {
    await api('POST', '/auth/logout');
  } catch (error) {
    // Ended already, or the server is out of reach: signing out here is all that is left.
  }
  logout();
}

// Forget the session on this page (the server may not know: see endSession).
function logout(reason) {
  state.token = null;  // first, so the socket's close does not reconnect
  clearTimeout(state.refreshTimer);
  if (state.socket) state.socket.close(1000);
  sessionStorage.clear();
  Object.assign(state, {user: null, roomId: null, joinedRoomId: null, socket: null, items: [], unsent: [],
                        awaitingSession: false, blocked: new Map(), revealed: new Set(),
                        openReports: [], listedReports: [], reportsHeard: null, reporting: null,
                        role: 'user', moderating: false, inDirectRoom: false, editing: null,
                        confirmingDelete: null, users: [], rooms: [], connectedBefore: false, jumpTo: null});
  state.roomsAsked += 1;  // a refresh still on its way is for the user who left
  document.title = 'SwiftChat';
  closeSearch();
  showPasswordForm(false);
  showAddMember(false);
  for (const dialog of ['admin-view', 'report-dialog', 'reports-view']) if ($(dialog).open) $(dialog).close();
  $('chat-view').hidden = true;
  $('login-view').hidden = false;
  $('change-password').hidden = true;
  $('admin').hidden = true;
  $('reports').hidden = true;
  $('logout').hidden = true;
  $('whoami').textContent = '';
  setStatus('');
  showError(reason || '');
}

function showChat() {
  $('login-view').hidden = true;
  $('chat-view').hidden = false;
  $('change-password').hidden = false;
  $('logout').hidden = false;
  $('whoami').textContent = state.user.username;
  $('whoami').title = state.user.username;
  showPane(state.roomId ? 'conversation' : 'rooms');
  showNotifyButton();
  scheduleRefresh();
  refreshRooms();
  loadRole();
  loadBlockedThenConnect();
}

// The role decides who sees "Admin" and may moderate every room. It is
// not kept with the session: an admin may have changed it since.
async function loadRole() {
  try {
    setRole((await api('GET', '/users/me')).user.role);
  } catch (error) {
    if (state.token) showError(error.message);  // else the session ended, and logout said so
  }
}

function setRole(role) {
  state.role = role;
  $('admin').hidden = role !== 'admin';
  if (role !== 'admin' && $('admin-view').open) $('admin-view').close();
  permissionsChanged();
  loadOpenReports();  // an admin's are every room's
}

// -- a new password -------------------------------------------------------------

function showPasswordForm(shown) {
  $('password-form').hidden = !shown;
  $('change-password').setAttribute('aria-expanded', String(shown));
  $('password-form').reset();
  showPasswordOutcome('', '');
  if (shown) $('old-password').focus();
}

function showPasswordOutcome(error, done) {
  $('password-error').textContent = error;
  $('password-changed').textContent = done;
}

// The answer is a token of a new session, as login's; every earlier
// session of the user ends, this page's own included, so its socket is
// closed with 4001, maybe before the answer is here. Until then that close
// is this change's doing (onSocketClosed), and the new token reconnects.
async function changePassword() {
  showPasswordOutcome('', '');
  state.changingPassword = true;
  try {
    saveSession(await api('POST', '/auth/password',
                          {old_password: $('old-password').value, new_password: $('new-password').value}));
    $('password-form').reset();
    showPasswordOutcome('', 'Password changed');
  } catch (error) {
    showPasswordOutcome(error.message, '');
  } finally {
    state.changingPassword = false;
  }
  // Ended, yet no new session came: it was ended by something else.
  if (state.awaitingSession) logout('Your session has ended. Please log in again.');
}

// -- rooms ------------------------------------------------------------------

// Of overlapping refreshes (activity in several rooms at once), only the
// one started last is drawn: an older answer may know less.
async function refreshRooms() {
  const asked = ++state.roomsAsked;
  let rooms;
  state.roomsInFlight = asked;
  try {
    rooms = await allRooms();
  } catch (error) {
    showError(error.message);
    return;
  } finally {
    if (state.roomsInFlight === asked) state.roomsInFlight = 0;
  }
  if (asked !== state.roomsAsked || !state.token) return;
  state.rooms = rooms;
  renderRooms();
  if (currentRoom()?.unread_count) readSoon();  // counted before we had read what is on screen
}

// GET /rooms answers at most 100 at a time: read them all, so that every
// room can be reached and the tab's title counts the unread of them all.
async function allRooms() {
  const rooms = [];
  for (;;) {
    const page = await api('GET', `/rooms?limit=100&offset=${rooms.length}`);
    rooms.push(...page.rooms);
    if (page.rooms.length === 0 || rooms.length >= page.total) return rooms;
  }
}

// room_activity and mentions come at most once a second per room, but from
// any number of rooms: one refresh serves all that arrive meanwhile.
function refreshRoomsSoon() {
  if (state.roomsTimer) return;
  state.roomsTimer = setTimeout(() => {
    state.roomsTimer = null;
    refreshRooms();
  }, ROOMS_REFRESH_MS);
}

// Rooms under "Rooms", direct rooms under "Direct messages". A keyboard
// user on a room's button stays on it: the list is redrawn whenever a
// count changes, which in a busy class is often.
function renderRooms() {
  const rooms = state.rooms.filter((room) => room.kind !== 'direct');
  const direct = state.rooms.filter((room) => room.kind === 'direct');
  const focused = document.activeElement?.closest('#room-list button, #direct-list button')?.dataset.roomId;
  $('no-rooms').hidden = rooms.length > 0;
  $('room-list').replaceChildren(...rooms.map(roomItem));
  $('no-direct').hidden = direct.length > 0;
  $('direct-list').replaceChildren(...direct.map(roomItem));
  if (focused) document.querySelector(`#rooms-panel button[data-room-id="${CSS.escape(focused)}"]`)?.focus();
  renderRoomHeader();
  showUnreadInTitle();
  showReportsButton();  // a room of our own makes us its moderator
}

function roomItem(room) {
  const button = document.createElement('button');
  button.type = 'button';
  button.dataset.roomId = room.id;
  button.setAttribute('aria-current', String(room.id === state.joinedRoomId));
  button.classList.toggle('unread', room.unread_count > 0);
  const name = roomName(room);
  button.append(isolated(name, 'room-name'), ...unreadBadges(room));
  if (room.kind === 'direct') {
    button.title = `Direct messages with ${isolatedString(name)}`;
  } else {
    button.title = room.description ? `${isolatedString(name)}: ${isolatedString(room.description)}` : name;
    const count = document.createElement('span');
    count.className = 'count';
    count.textContent = `${room.member_count} member${room.member_count === 1 ? '' : 's'}`
      + (room.visibility === 'private' ? ' · private' : '');
    button.append(count);
  }
  button.addEventListener('click', () => joinRoom(room.id));
  const item = document.createElement('li');
  item.append(button);
  return item;
}

// A direct room is named for its two members ("alice & bob"); each of them
// sees the other's name. Usernames hold no spaces or "&", so the split is
// unambiguous; letter case is compared loosely, as the server compares names.
function roomName(room) {
  if (room.kind !== 'direct') return room.name;
  const name = room.name.toLowerCase(), me = state.user.username.toLowerCase();
  if (name.startsWith(`${me} & `)) return room.name.slice(me.length + 3);
  if (name.endsWith(` & ${me}`)) return room.name.slice(0, -(me.length + 3));
  return room.name;
}

function renderRoomHeader() {
  const room = currentRoom();
  const direct = Boolean(room && room.kind === 'direct');
  $('room-title').textContent = room ? roomName(room) : 'Pick a room to start chatting';
  $('room-title').title = room ? roomName(room) : '';
  $('room-about').textContent = room ? room.description : '';
  $('room-about').title = room ? room.description : '';
  // A direct room cannot be left, described or deleted, by anyone (the server answers 403).
  $('leave-room').hidden = direct;
  $('creator-tools').hidden = !(room && room.creator_id === state.user.id) || direct;
  if (room && document.activeElement !== $('new-description')) {
    $('new-description').value = room.description;
  }
  permissionsChanged();
}

// A room new to this user's list: created (by us, or by anyone if public),
// a direct room opened by either of its two, or a private room we were added to.
function addRoom(room) {
  if (!state.rooms.some((r) => r.id === room.id)) state.rooms.push(room);
  renderRooms();
}

function onRoomListChanged(data) {
  const {type, ...listed} = data;
  if (state.roomsInFlight) {
    // A refresh asked before this change would undo it when it answers
    // (a direct room just opened would vanish): drop it, and ask again.
    state.roomsAsked += 1;
    refreshRoomsSoon();
  }
  if (type === 'room_created' || type === 'room_added') return addRoom(listed);
  if (type === 'room_updated') {
    const room = state.rooms.find((r) => r.id === data.room_id);
    if (room) room.description = data.description;
  } else {
    state.rooms = state.rooms.filter((r) => r.id !== data.room_id);
    if (data.room_id === state.joinedRoomId || data.room_id === state.roomId) {
      onRoomGone('This room was deleted by its creator.');
    }
  }
  renderRooms();
}

// The server counts, for each room we are a member of, the messages of
// others since our read marker, and the mentions of us among them.
// Screen readers say the badges as "3 unread" and "1 mentions" (one
// pattern each, whatever the number, so that they are easy to listen for).
function unreadBadges(room) {
  const badges = [];
  if (room.unread_count > 0) badges.push(badge(`${room.unread_count} unread`, String(room.unread_count), 'unread'));
  if (room.mention_count > 0) badges.push(badge(`${room.mention_count} mentions`, `@${room.mention_count}`, 'mentions'));
  return badges;
}

function badge(name, shown, className) {
  const span = element('span', shown);
  span.className = `badge ${className}`;
  span.setAttribute('role', 'img');  // a named image, as the online dot is: the name is what is read
  span.setAttribute('aria-label', name);
  span.title = name;
  return span;
}

function showUnreadInTitle() {
  const unread = state.rooms.reduce((total, room) => total + (room.unread_count || 0), 0);
  document.title = unread > 0 ? `(${unread}) SwiftChat` : 'SwiftChat';
}

// -- reading: read markers, room activity and notifications ------------------------

// Viewing a room reads it: while the tab is visible, the room on screen is
// marked read up to its newest message, and the server tells the user's
// other devices (read_marker), whose badges then clear. At most one
// mark_read per READ_DELAY_MS: a connection may send 20 frames a second.
function readSoon() {
  if (state.readTimer) return;
  state.readTimer = setTimeout(() => {
    state.readTimer = null;
    markRead();
  }, READ_DELAY_MS);
}

function markRead() {
  const room = currentRoom();
  const newest = state.items.findLast((item) => item.kind === 'message' && item.id != null);
  if (!room || !newest || document.visibilityState !== 'visible' || state.pendingLive) return;
  if (newest.id <= (room.last_read_id || 0) && !room.unread_count && !room.mention_count) return;
  send({type: 'mark_read', room_id: room.id, message_id: newest.id}, true);
  const shown = room.unread_count || room.mention_count;  // the list shows counts, not markers
  Object.assign(room, {last_read_id: Math.max(newest.id, room.last_read_id || 0), unread_count: 0, mention_count: 0});
  if (shown) renderRooms();
}

// read_marker: the answer to our mark_read, or another device of ours read
// a room. It says what is still unread but not how many mentions: none if
// nothing is, else GET /rooms knows.
function onReadMarker(data) {
  const room = state.rooms.find((r) => r.id === data.room_id);
  if (!room) return;
  room.last_read_id = Math.max(data.last_read_id, room.last_read_id || 0);
  if (room === currentRoom() && document.visibilityState === 'visible' && data.unread_count > 0) {
    return readSoon();  // what arrived since our mark_read is on screen: read, not a badge that blinks
  }
  if (data.unread_count > 0) return refreshRoomsSoon();  // GET /rooms says how many mention us
  if (!room.unread_count && !room.mention_count) return;  // nothing shown changes
  room.unread_count = room.mention_count = 0;
  renderRooms();
}

// While the tab is hidden, a message in the room on screen is unread: the
// server counts it too, but tells this connection nothing more (room_activity
// is for connections elsewhere). A mention, or any message in a direct room,
// may also be a notification.
function countUnseen(message) {
  const room = currentRoom();
  if (!room || message.id == null || message.user_id === state.user.id) return;
  if (message.id <= (room.last_read_id || 0)) return;
  room.unread_count = (room.unread_count || 0) + 1;
  if (mentionsMe(message)) room.mention_count = (room.mention_count || 0) + 1;
  renderRooms();
  if (mentionsMe(message) || room.kind === 'direct') notify(message);
}

function mentionsMe(message) {
  return (message.mentions || []).includes(state.user.id);
}

// room_activity: messages in a room this connection is not in. It says
// only the newest id, at most once a second, so GET /rooms does the counting.
// A direct room's message is worth a notification, which needs its words.
function onRoomActivity(data) {
  refreshRoomsSoon();
  const room = state.rooms.find((r) => r.id === data.room_id);
  if (room && room.kind === 'direct' && notificationsOn() && document.hidden) notifyNewest(room);
}

async function notifyNewest(room) {
  try {
    const [newest] = (await api('GET', `/messages?room_id=${encodeURIComponent(room.id)}&limit=1`)).messages;
    if (newest) notify({...fromHistory(newest), room_id: room.id});
  } catch (error) {
    // Only a notification is lost; the badge still counts the message.
  }
}

// mention: someone wrote @us in a room this connection is not in.
function onMention(data) {
  refreshRoomsSoon();
  notify(data.message);
}

function notificationsOn() {
  return state.notify && 'Notification' in window && Notification.permission === 'granted';
}

// A browser notification, only while the tab is hidden (a visible page
// shows its badges) and only once per message. Clicking it opens the room
// at that message.
function notify(message) {
  if (!notificationsOn() || !document.hidden || message.user_id === state.user.id) return;
  if (state.blocked.has(message.user_id)) return;
  if (state.notified.has(message.id)) return;
  state.notified.add(message.id);
  const room = state.rooms.find((r) => r.id === message.room_id);
  const title = room?.kind === 'direct' ? `${message.username} sent you a message`
    : `${message.username} mentioned you${room ? ` in ${room.name}` : ''}`;
  let notification;
  try {
    notification = new Notification(title, {body: message.content.slice(0, 200), tag: `swiftchat-${message.id}`});
  } catch (error) {
    return;  // some phones' browsers show notifications only from a service worker
  }
  notification.addEventListener('click', () => {
    window.focus();
    notification.close();
    openAt(message.room_id, message.id);
  });
}

// "Enable notifications" asks the browser's permission (never asked on
// load); the choice is kept for this browser, as the permission is.
async function toggleNotifications() {
  if (notificationsOn()) {
    state.notify = false;
    localStorage.removeItem('swiftchat.notify');
  } else if (await Notification.requestPermission() === 'granted') {
    state.notify = true;
    localStorage.setItem('swiftchat.notify', 'on');
  } else {
    showError('This browser is set to refuse notifications from this site; its site settings can allow them.');
  }
  showNotifyButton();
}

function showNotifyButton() {
  $('notify').hidden = !('Notification' in window);
  $('notify').textContent = notificationsOn() ? 'Turn off notifications' : 'Enable notifications';
}

function joinRoom(roomId) {
  showError('');
  showPane('conversation');
  if (roomId === state.joinedRoomId) return;
  state.roomId = roomId;
  sessionStorage.setItem('swiftchat.room', roomId);
  send({type: 'join_room', room_id: roomId});
}

// room_joined: a fresh join loads history; a rejoin that recovered keeps
// what is on screen, and the missed messages follow as replayed frames.
async function onRoomJoined(data) {
  const rejoined = data.room_id === state.joinedRoomId || data.recovered !== undefined;
  if (data.room_id !== state.joinedRoomId) showAddMemberForm(false);  // it was for the room before
  state.joinedRoomId = data.room_id;
  setConnected(true);
  renderRooms();
  if (!currentRoom()) refreshRoomsSoon();  // opened from a search result, say, before it was listed
  refreshMembers();
  $('message-input').focus();
  if (!(rejoined && data.recovered)) await loadHistory(data.room_id);
  // Messages we sent here but never saw confirmed: the same client_id makes a resend safe.
  state.unsent = state.unsent.filter((message) => message.room_id === data.room_id);
  for (const {content, client_id} of state.unsent) send({type: 'send_message', content, client_id});
}

// The room was deleted, or we were removed from it: its conversation goes,
// and a notice (parts as for addNotice) says why.
function onRoomGone(...notice) {
  state.roomId = state.joinedRoomId = null;
  sessionStorage.removeItem('swiftchat.room');
  setConnected(true);
  Object.assign(state, {items: [], editing: null, confirmingDelete: null});
  renderConversation();
  addNotice(...notice);
  state.members = [];
  renderMembers();
  refreshRooms();
}

// room_removed: the room's creator or an admin took us out; the server
// has already taken this connection out of the room.
function onRemovedFromRoom(data) {
  if (data.room_id !== state.joinedRoomId && data.room_id !== state.roomId) return;
  const room = state.rooms.find((r) => r.id === data.room_id);
  if (room) onRoomGone('You were removed from ', {user: room.name}, '.');
  else onRoomGone('You were removed from this room.');
}

async function leaveRoom() {
  const roomId = state.joinedRoomId;
  if (!roomId) return;
  try {
    await api('POST', '/rooms/leave', {room_id: roomId});
  } catch (error) {
    showError(error.message);
    return;
  }
  send({type: 'leave_room'});
  state.roomId = state.joinedRoomId = null;
  sessionStorage.removeItem('swiftchat.room');
  state.items = [];
  state.members = [];
  renderConversation();
  renderMembers();
  setConnected(true);
  showPane('rooms');
  refreshRooms();
}

// -- searching messages ----------------------------------------------------------

// Newest first, from the rooms we may read; "More results" asks for the
// ones older than the last shown.
async function searchMessages(more) {
  const query = more ? state.search.query : $('search-input').value.trim();
  if (!query) return;
  const before = more ? `&before=${state.search.results.at(-1).id}` : '';
  try {
    const found = await api('GET', `/search?q=${encodeURIComponent(query)}&limit=${RESULTS}${before}`);
    const results = more ? [...state.search.results, ...found.messages] : found.messages;
    state.search = {query, results, more: found.messages.length === RESULTS};
    renderResults();
  } catch (error) {
    state.search = null;
    showSearch(error.message);
  }
}

function showSearch(outcome) {
  $('search-results').hidden = false;
  $('search-outcome').textContent = outcome;
  $('result-list').replaceChildren();
  $('more-results').hidden = true;
}

function renderResults() {
  const {query, results, more} = state.search;
  const count = `${results.length}${more ? '+' : ''}`;
  showSearch(results.length ? `${count} message${results.length === 1 ? '' : 's'} found`
    : `No messages match ${isolatedString(query)}`);
  const words = queryPattern(query);
  $('result-list').replaceChildren(...results.map((message) => resultItem(message, words)));
  $('more-results').hidden = !more;
}

function closeSearch() {
  state.search = null;
  $('search-results').hidden = true;
  $('search-form').reset();
}

// One result: where, who and when, then the words that matched in their place.
function resultItem(message, words) {
  const when = new Date(message.timestamp * 1000);
  const time = element('time', when.toLocaleString([], {dateStyle: 'medium', timeStyle: 'short'}));
  time.dateTime = when.toISOString();
  const room = state.rooms.find((r) => r.id === message.room_id);
  const meta = element('span', isolated(room ? roomName(room) : message.room_name, 'room-name'), ' · ',
                       isolated(message.sender.username, 'author'), ' · ', time);
  meta.className = 'meta';
  const text = element('span', ...highlighted(excerpt(message.content, words), words));
  text.className = 'excerpt content';
  text.dir = 'auto';
  const button = element('button', meta, text);
  button.type = 'button';
  button.className = 'result';
  button.dataset.roomId = message.room_id;
  button.dataset.messageId = message.id;
  return element('li', button);
}

// The query's words as one pattern for highlighting them, as the server
// matches them: whole words whatever their case, and word* as a prefix.
// The words hold only letters, digits and "_", so none needs escaping.
function queryPattern(query) {
  const words = (query.match(/[\p{L}\p{N}_]+\*?/gu) || []).map((word) => (word.endsWith('*')
    ? `${word.slice(0, -1)}[\\p{L}\\p{N}_]*` : `${word}(?![\\p{L}\\p{N}_])`));
  return words.length ? new RegExp(`(?<![\\p{L}\\p{N}_])(?:${words.join('|')})`, 'giu') : null;
}

// A long message is cut to about EXCERPT characters around its first match.
function excerpt(content, words) {
  if (content.length <= EXCERPT) return content;
  const first = words ? content.search(words) : 0;
  const start = Math.max(0, first - Math.floor(EXCERPT / 3));  // some words before it, more after
  return `${start > 0 ? '…' : ''}${content.slice(start, start + EXCERPT)}${start + EXCERPT < content.length ? '…' : ''}`;
}

// Text with each match of the pattern in a <mark>, built from text nodes.
function highlighted(text, pattern) {
  if (!pattern) return [text];
  const nodes = [];
  let at = 0;
  for (const match of text.matchAll(pattern)) {
    if (!match[0]) continue;
    nodes.push(text.slice(at, match.index), element('mark', match[0]));
    at = match.index + match[0].length;
  }
  nodes.push(text.slice(at));
  return nodes.filter((node) => node !== '');
}

// Open a room at one of its messages (a search result or a notification).
// A public room we are not in yet is joined, as choosing it in the list would.
function openAt(roomId, messageId) {
  showPane('conversation');
  if (roomId === state.joinedRoomId && findMessage(messageId)) return showFound(messageId);
  state.jumpTo = {roomId, messageId};
  if (roomId === state.joinedRoomId) loadHistory(roomId);
  else joinRoom(roomId);
}

// -- members ------------------------------------------------------------------

async function refreshMembers() {
  const roomId = state.joinedRoomId;
  if (!roomId) return;
  try {
    const members = (await api('GET', `/rooms/${encodeURIComponent(roomId)}/members`)).members;
    if (roomId === state.joinedRoomId) state.members = members;
    countMembers(roomId, members.length);
  } catch (error) {
    showError(error.message);
  }
  renderMembers();
}

// The room list's count is of persisted members (member_count), as the
// member list is; whatever changed the list (someone joined, left, was
// added or removed) changed the count.
function countMembers(roomId, count) {
  const room = state.rooms.find((r) => r.id === roomId);
  if (!room || room.member_count === count) return;
  room.member_count = count;
  renderRooms();
}

function renderMembers() {
  $('no-members').hidden = Boolean(state.joinedRoomId);
  const mayRemove = state.joinedRoomId && moderating();
  // Online first, then by name.
  const members = [...state.members].sort((a, b) =>
    (b.is_online - a.is_online) || a.username.localeCompare(b.username));
  $('member-list').replaceChildren(...members.map((member) => {
    const li = document.createElement('li');
    li.className = 'member' + (member.is_online ? '' : ' offline');
    li.dataset.userId = member.id;
    const dot = document.createElement('span');
    dot.className = 'dot' + (member.is_online ? ' online' : '');
    dot.setAttribute('aria-label', member.is_online ? 'online' : 'offline');
    dot.setAttribute('role', 'img');
    const name = isolated(member.username, 'name');
    name.title = member.username;
    li.append(dot, name);
    if (member.in_room) {
      const here = document.createElement('span');
      here.className = 'here';
      here.textContent = 'here';
      here.title = 'in this room now';
      li.append(here);
    }
    if (member.id === state.user.id) return li;
    const buttons = element('span');
    buttons.className = 'buttons';
    if (!state.inDirectRoom) buttons.append(messageButton(member));  // it would lead back here
    if (mayRemove) buttons.append(removeButton(member));
    buttons.append(blockButton(member));
    li.append(buttons);
    return li;
  }));
}

function removeButton(member) {
  const button = controlButton('Remove', 'remove', 'remove');
  button.title = `Remove ${isolatedString(member.username)} from this room`;
  return button;
}

// No ban: the member may join again. Their connections in the room leave
// it and are told (room_removed); the room hears user_left if they were here.
async function removeMember(userId) {
  const roomId = state.joinedRoomId;
  try {
    await api('DELETE', `/rooms/${encodeURIComponent(roomId)}/members/${encodeURIComponent(userId)}`);
  } catch (error) {
    showError(error.message);
  }
  refreshMembers();  // and with it the room list's count
}

// -- private rooms and direct messages ------------------------------------------

function messageButton(member) {
  const button = controlButton('Message', 'message');
  button.title = `Direct messages with ${isolatedString(member.username)}`;
  return button;
}

// "Message": the direct room of the two of us, the same one each time from
// either side. Both our connections hear room_created the first time; the
// answer is here first, so the room is listed before we join it.
async function openDirect(userId) {
  showError('');
  try {
    const room = await api('POST', '/direct', {user_id: userId});
    addRoom({...room, member_count: 2});
    joinRoom(room.id);
  } catch (error) {
    showError(error.message);
  }
}

// What each button of a member's row does, by its data-control.
const MEMBER_CONTROLS = {
  message: openDirect,
  remove: removeMember,
  block: (userId) => setBlocked(userId, true),
  unblock: (userId) => setBlocked(userId, false),
};

// -- blocking -------------------------------------------------------------------
// Blocking is the blocker's own choice: the server stops the blocked user
// from opening a direct room with them or mentioning them, and this page
// hides the blocked user's messages behind a button, one at a time.

// Known before any message is drawn, so that a blocked user's words never
// show, not even for a moment; then the connection (and the room's history).
async function loadBlockedThenConnect() {
  try {
    const {users} = await api('GET', '/users/me/blocked');
    state.blocked = new Map(users.map((user) => [user.id, user]));
  } catch (error) {
    // Nobody is hidden; the page is usable all the same (a 401 has signed it out).
  }
  if (state.token) connect();
}

function hiddenAsBlocked(item) {
  return state.blocked.has(item.user_id) && !state.revealed.has(item.id);
}

function showBlockedMessage(id) {
  state.revealed.add(id);
  redrawMessage(id);
}

function blockButton(member) {
  const blocked = state.blocked.has(member.id);
  const button = controlButton(blocked ? 'Unblock' : 'Block', blocked ? 'unblock' : 'block');
  button.title = blocked ? `Show ${isolatedString(member.username)}’s messages again`
    : `Hide ${isolatedString(member.username)}’s messages from you`;
  return button;
}

// Blocking hides again what was shown of theirs; either way the
// conversation is drawn again, and the keyboard stays on the button.
async function setBlocked(userId, blocked) {
  showError('');
  try {
    const {user} = await api(blocked ? 'POST' : 'DELETE', `/users/${encodeURIComponent(userId)}/block`);
    if (blocked) {
      state.blocked.set(userId, user);
      forgetRevealed(userId);
    } else {
      state.blocked.delete(userId);
    }
  } catch (error) {
    return showError(error.message);
  }
  renderConversation();
  renderMembers();
  const row = $('member-list').querySelector(`li[data-user-id="${CSS.escape(userId)}"]`);
  row?.querySelector(`[data-control="${blocked ? 'unblock' : 'block'}"]`)?.focus();
}

function forgetRevealed(userId) {
  for (const item of state.items) if (item.user_id === userId) state.revealed.delete(item.id);
}

// Nobody joins a private room by themselves: its creator, or an admin, adds them.
function mayAddMembers() {
  const room = currentRoom();
  return Boolean(room && room.visibility === 'private' && room.kind === 'room'
                 && (room.creator_id === state.user.id || state.role === 'admin'));
}

function showAddMember(allowed) {
  $('add-member').hidden = !allowed;
  if (!allowed) showAddMemberForm(false);
}

// The form is a copy of its template, put in the page while open (see index.html).
function showAddMemberForm(shown) {
  const open = $('add-member-form');
  $('add-member').setAttribute('aria-expanded', String(shown));
  if (!shown) {
    if (open) open.remove();
    return;
  }
  if (open) return open.elements.username.focus();
  const form = $('add-member-template').content.firstElementChild.cloneNode(true);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    addMember(form);
  });
  form.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    showAddMemberForm(false);
    $('add-member').focus();
  });
  $('add-member').after(form);
  form.elements.username.focus();
}

function showAddMemberOutcome(form, error, done) {
  form.querySelector('[role=alert]').textContent = error;
  form.querySelector('[role=status]').textContent = done;
}

// The form stays open, emptied, for the next name. The added user's
// connections hear room_added, which puts the room in their list.
async function addMember(form) {
  const roomId = state.joinedRoomId;
  const username = form.elements.username.value.trim();
  showAddMemberOutcome(form, '', '');
  try {
    const user = await findUser(username);
    if (!user) return showAddMemberOutcome(form, `Nobody is called ${isolatedString(username)}`, '');
    const member = await api('POST', `/rooms/${encodeURIComponent(roomId)}/members`, {user_id: user.id});
    form.elements.username.value = '';
    showAddMemberOutcome(form, '', `${isolatedString(member.username)} was added`);
    refreshMembers();  // and with it the room list's count
  } catch (error) {
    showAddMemberOutcome(form, error.message, '');
  }
}

// GET /users has no search by name: read it 100 at a time until the name
// turns up. Names are unique whatever their letter case, as at login.
async function findUser(username) {
  const wanted = username.toLowerCase();
  for (let seen = 0; ;) {
    const page = await api('GET', `/users?limit=100&offset=${seen}`);
    const user = page.users.find((u) => u.username.toLowerCase() === wanted);
    seen += page.users.length;
    if (user || page.users.length === 0 || seen >= page.total) return user || null;
  }
}

// -- reports --------------------------------------------------------------------
// Anyone may report someone else's message, once, with a reason. It goes to
// the room's moderators (for now its creator) and to the admins, who hear
// of it at once ("New report") and settle it in the Reports view.

function askToReport(id) {
  const item = findMessage(id);
  if (!item) return;
  state.reporting = id;
  $('report-form').reset();
  $('report-error').textContent = '';
  const text = element('p', ...formatted(item.content));
  text.className = 'content';
  text.dir = 'auto';
  $('report-quote').replaceChildren(isolated(item.username, 'author'), text);
  $('report-dialog').showModal();  // and the reason's box has the focus
}

// A second report of the same message is refused (409 "Already reported"):
// the dialog stays open and says so.
async function sendReport() {
  $('report-error').textContent = '';
  try {
    await api('POST', `/messages/${state.reporting}/report`, {reason: $('report-reason').value});
  } catch (error) {
    $('report-error').textContent = error.message;
    return;
  }
  $('report-dialog').close();
  addNotice('Report received: the moderators will look at it.');
}

// Who sees "Reports": admins see every room's reports, and a room's creator
// moderates it; a moderator of another kind once the server lists a report for them.
function seesReports() {
  return state.role === 'admin' || state.openReports.length > 0
    || state.rooms.some((room) => room.kind !== 'direct' && room.creator_id === state.user?.id);
}

function showReportsButton() {
  const count = state.openReports.length;
  $('reports').hidden = !state.token || !seesReports();
  $('reports').setAttribute('aria-label', `Reports, ${count} open`);
  $('reports-count').textContent = String(count);
  $('reports-count').hidden = count === 0;
}

async function fetchReports(status) {
  return (await api('GET', `/reports?status=${status}`)).reports;
}

// The open reports, for the count and the view. A report told live while the
// list was on its way is kept: the list may have been read before it was made.
// Answers with what went wrong ('' if nothing), for the view to show.
async function loadOpenReports() {
  const heard = state.reportsHeard = [];
  let reports = null, problem = '';
  try {
    reports = await fetchReports('open');  // none for a user who moderates nothing
  } catch (error) {
    problem = error.message;  // the count stays as it was; the view says what went wrong
  }
  if (heard !== state.reportsHeard || !state.token) return problem;  // a newer load, or signed out
  state.reportsHeard = null;
  if (reports) state.openReports = reports;
  heard.forEach(addOpenReport);
  showReportsButton();
  if ($('reports-view').open) renderReports();
  return problem;
}

// "New report": a report in a room we moderate, just made.
function onReport(report) {
  if (state.reportsHeard) state.reportsHeard.push(report);
  addOpenReport(report);
}

function addOpenReport(report) {
  if (state.openReports.some((r) => r.id === report.id)) return;
  state.openReports = [report, ...state.openReports].sort((a, b) => b.id - a.id);
  if ($('report-filter').value === 'all') state.listedReports = [report, ...state.listedReports];
  showReportsButton();
  if ($('reports-view').open) renderReports();
}

async function openReportsView() {
  showReportsError('');
  $('reports-view').showModal();
  await listReports();
}

// Asked again each time: another moderator may have settled some meanwhile.
async function listReports() {
  const status = $('report-filter').value;
  showReportsError('');
  if (status === 'open') {
    showReportsError(await loadOpenReports());
  } else {
    try {
      state.listedReports = await fetchReports(status);
    } catch (error) {
      state.listedReports = [];
      showReportsError(error.message);
    }
  }
  if (status === $('report-filter').value) renderReports();  // else a newer choice draws its own
}

function showReportsError(text) {
  $('reports-error').textContent = text;
  $('reports-error').hidden = !text;
}

function shownReports() {
  return $('report-filter').value === 'open' ? state.openReports : state.listedReports;
}

function renderReports() {
  const status = $('report-filter').value;
  const reports = shownReports();
  const focused = focusInReports();
  $('report-list').replaceChildren(...reports.map(reportItem));
  $('reports-empty').textContent = status === 'all' ? 'No reports.' : `No ${status} reports.`;
  $('reports-empty').hidden = reports.length > 0;
  restoreReportFocus(focused);
}

// A keyboard user stays on their button while reports come and go; when
// its report has left the list, on the one that took its place.
function focusInReports() {
  const row = document.activeElement?.closest('#report-list li');
  if (!row) return null;
  return {id: row.dataset.reportId, control: document.activeElement.dataset.control,
          place: [...$('report-list').children].indexOf(row)};
}

function restoreReportFocus(focused) {
  if (!focused) return;
  const rows = [...$('report-list').children];
  const same = rows.find((row) => row.dataset.reportId === focused.id);
  const target = same?.querySelector(`[data-control="${focused.control}"]`)
    || rows[Math.min(focused.place, rows.length - 1)]?.querySelector('button');
  (target || $('report-filter')).focus();
}

// Where and by whom, what was written (the report's own copy), who reported
// it, when, and why.
function reportItem(report) {
  const {message} = report;
  const where = element('p', isolated(message.room_name, 'room-name'), ' · ',
                        isolated(message.sender.username, 'author'));
  where.className = 'meta';
  const text = element('p', ...formatted(message.content));
  text.className = 'content';
  text.dir = 'auto';
  const when = new Date(report.created_at);
  const time = element('time', when.toLocaleString([], {dateStyle: 'medium', timeStyle: 'short'}));
  time.dateTime = report.created_at;
  const by = element('p', 'Reported by ', isolated(report.reporter.username), ' · ', time);
  by.className = 'meta';
  const reason = report.reason ? element('p', isolated(report.reason)) : element('p', 'No reason given');
  reason.className = report.reason ? 'reason' : 'reason empty';
  const li = element('li', where, text, by, reason, reportActions(report));
  li.className = 'report';
  li.dataset.reportId = report.id;
  return li;
}

function reportActions(report) {
  if (report.status !== 'open') {
    const settled = element('p', report.status === 'resolved' ? 'Resolved' : 'Dismissed');
    settled.className = 'settled';
    return settled;
  }
  const buttons = element('div', controlButton('Resolve', 'resolve'), controlButton('Dismiss', 'dismiss'));
  buttons.className = 'buttons';
  return buttons;
}

// Settled, a report leaves the open list and the count.
async function settleReport(id, status) {
  showReportsError('');
  try {
    const {report} = await api('PATCH', `/reports/${id}`, {status});
    state.openReports = state.openReports.filter((r) => r.id !== id);
    state.listedReports = state.listedReports.map((r) => (r.id === id ? report : r));
  } catch (error) {
    showReportsError(error.message);
  }
  showReportsButton();
  renderReports();
}

// What each button of a report does, by its data-control.
const REPORT_CONTROLS = {
  resolve: (id) => settleReport(id, 'resolved'),
  dismiss: (id) => settleReport(id, 'dismissed'),
};

// -- administration (admins only) -----------------------------------------------

async function openAdmin() {
  state.settingPasswordFor = null;
  showAdminOutcome('', '');
  $('admin-view').showModal();
  try {
    state.users = await allUsers();
  } catch (error) {
    showAdminOutcome(error.message, '');
  }
  renderUsers();
}

// GET /users answers at most 100 at a time.
async function allUsers() {
  const users = [];
  for (;;) {
    const page = await api('GET', `/users?limit=100&offset=${users.length}`);
    users.push(...page.users);
    if (page.users.length === 0 || users.length >= page.total) return users;
  }
}

function showAdminOutcome(error, done) {
  $('admin-error').textContent = error;
  $('admin-error').hidden = !error;
  $('admin-status').textContent = done;
}

// A keyboard user stays on the control they used ("Disable" becomes
// "Enable" in the same place); past the row's end, its last button.
function renderUsers() {
  const active = document.activeElement;
  const row = active.closest('#user-list li');
  const place = row && [...row.querySelectorAll('button, input')].indexOf(active);
  $('user-list').replaceChildren(...state.users.map(userRow));
  if (!row) return;
  const again = $('user-list').querySelector(`li[data-user-id="${row.dataset.userId}"]`);
  const controls = again ? again.querySelectorAll('button, input') : [];
  if (controls.length) (controls[place] || controls[controls.length - 1]).focus();
}

function userRow(user) {
  const li = document.createElement('li');
  li.className = 'user';
  li.dataset.userId = user.id;
  const about = document.createElement('span');
  about.className = 'about';
  about.textContent = [user.role, user.disabled ? 'disabled' : '', user.id === state.user.id ? 'you' : '']
    .filter(Boolean).join(', ');
  const admin = user.role === 'admin';
  const buttons = document.createElement('div');
  buttons.className = 'buttons';
  buttons.append(controlButton(user.disabled ? 'Enable' : 'Disable', user.disabled ? 'enable' : 'disable'),
                 controlButton(admin ? 'Make user' : 'Make admin', admin ? 'make-user' : 'make-admin'),
                 controlButton('Set password', 'set-password'));
  li.append(isolated(user.username, 'name'), about, buttons);
  if (state.settingPasswordFor === user.id) li.append(setPasswordForm());
  return li;
}

function setPasswordForm() {
  const input = document.createElement('input');
  input.type = 'password';
  input.autocomplete = 'new-password';
  input.required = true;
  const label = document.createElement('label');
  label.append('New password ', input);
  const save = controlButton('Save password', 'save-password');
  save.type = 'submit';
  const form = document.createElement('form');
  form.className = 'set-password';
  form.append(label, save, controlButton('Cancel', 'cancel-password'));
  return form;
}

function showSetPassword(userId) {
  state.settingPasswordFor = userId;
  renderUsers();
  if (userId) $('user-list').querySelector(`li[data-user-id="${userId}"] input`).focus();
}

// Disabling or a new password ends the user's sessions (their sockets close with 4001).
async function updateUser(userId, changes, done) {
  showAdminOutcome('', '');
  try {
    const {user} = await api('PATCH', `/users/${encodeURIComponent(userId)}`, changes);
    state.users = state.users.map((listed) => (listed.id === user.id ? user : listed));
    if (changes.password !== undefined) state.settingPasswordFor = null;
    renderUsers();
    showAdminOutcome('', `${isolatedString(user.username)} ${done}`);
    if (state.user && user.id === state.user.id) setRole(user.role);
  } catch (error) {
    showAdminOutcome(error.message, '');
  }
}

// What each button of a user's row does, by its data-control.
const USER_CONTROLS = {
  disable: (id) => updateUser(id, {disabled: true}, 'is disabled and signed out'),
  enable: (id) => updateUser(id, {disabled: false}, 'may sign in again'),
  'make-admin': (id) => updateUser(id, {role: 'admin'}, 'is an admin now'),
  'make-user': (id) => updateUser(id, {role: 'user'}, 'is no longer an admin'),
  'set-password': (id) => showSetPassword(id),
  'cancel-password': () => showSetPassword(null),
};

// -- the WebSocket ----------------------------------------------------------

// The server says where its WebSocket is (websocket_url: behind a proxy,
// --public-ws-url; else this page's host and the WebSocket port).
async function connect() {
  try {
    if (!state.wsUrl) state.wsUrl = (await api('GET', '/info')).websocket_url;
  } catch (error) {
    return reconnectLater();
  }
  // A page served over HTTPS may only open wss://.
  const url = location.protocol === 'https:' ? state.wsUrl.replace(/^ws:/, 'wss:') : state.wsUrl;
  const socket = new WebSocket(url);
  state.socket = socket;
  state.authenticated = false;
  setStatus('Connecting…');
  socket.onopen = () => socket.send(JSON.stringify({type: 'auth', token: state.token}));
  socket.onmessage = (event) => onFrame(JSON.parse(event.data));
  socket.onclose = (event) => onSocketClosed(socket, event);
}

function send(frame, quietly) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify(frame));
  } else if (!quietly) {
    showError('Not connected. Reconnecting…');
  }
}

function onSocketClosed(socket, event) {
  if (socket !== state.socket || !state.token) return;  // replaced, or logged out
  forgetSocket();
  if (event.code === 4000) {
    setStatus('Disconnected');
    showError('You signed in from another window, so this one was disconnected. Reload to take over.');
  } else if (event.code === 1008) {
    logout('Your session has expired. Please log in again.');
  } else if (event.code === SESSION_ENDED && state.changingPassword) {
    state.awaitingSession = true;  // the answer's new session reconnects (carryConnectionOver)
    setStatus('Reconnecting…');
  } else if (event.code === SESSION_ENDED) {  // a new connection would be refused too
    logout('Your session has ended. Please log in again.');
  } else {
    reconnectLater();
  }
}

// The page's socket is gone: the room it was in is rejoined with `since`.
function forgetSocket() {
  state.socket = null;
  state.rejoinRoomId = state.joinedRoomId;
  state.joinedRoomId = null;
  setConnected(false);
}

// A new connection now, with the page's new token; the old one (if still
// open) is let go first, so that its close is not taken for a drop.
function reconnectNow() {
  const old = state.socket;
  state.awaitingSession = false;
  if (old) {
    forgetSocket();
    old.close(1000);
  }
  connect();
}

function reconnectLater() {
  setStatus('Offline');
  showError(`Connection lost. Reconnecting in ${Math.round(state.retryDelay / 100) / 10} s…`);
  setTimeout(() => { if (state.token) connect(); }, state.retryDelay);
  state.retryDelay = Math.min(state.retryDelay * 2, 10000);
}

function onFrame(frame) {
  if (!frame.success) {
    if (frame.error === 'Room not found') onRoomGone('That room no longer exists.');
    else if (frame.message === 'Failed to save message') showError('Your message could not be saved. Please send it again.');
    else showError(frame.error);
    return;
  }
  const data = frame.data;
  if (data.status === 'connected') return onAuthenticated();
  switch (data.type) {
    case 'room_joined': return onRoomJoined(data);
    case 'user_joined':
      addNotice({user: data.username}, ' joined');
      return refreshMembers();  // and with it the room list's count
    case 'user_left':
      clearTyping(data.user_id);
      addNotice({user: data.username}, ' left');
      return refreshMembers();
    case 'user_typing': return showTyping(data);
    case 'message_sent':
      state.unsent = state.unsent.filter((m) => m.client_id !== data.client_id);
      // fall through: our own message is shown like anyone's
    case 'message_received':
    case 'message_updated':
    case 'message_deleted':
      if (data.room_id !== state.joinedRoomId) return;
      return state.pendingLive ? state.pendingLive.push(data) : applyMessageFrame(data);
    case 'room_removed': return onRemovedFromRoom(data);
    case 'read_marker': return onReadMarker(data);
    case 'room_activity': return onRoomActivity(data);
    case 'mention': return onMention(data);
    case 'report': return onReport(data.report);
    case 'room_created':
    case 'room_added':
    case 'room_updated':
    case 'room_deleted':
      return onRoomListChanged(data);
  }
}

function onAuthenticated() {
  if (state.authenticated) return;  // a renewed token accepted: same connection, same room
  state.authenticated = true;
  setStatus('Connected');
  showError('');
  state.retryDelay = 500;
  if (state.connectedBefore) {  // back after a drop: counts moved, reports came meanwhile
    refreshRoomsSoon();
    loadOpenReports();
  }
  state.connectedBefore = true;
  if (!state.roomId) return;
  const join = {type: 'join_room', room_id: state.roomId};
  // Back after a drop in the same room: ask only for what we missed.
  const lastId = state.lastIdByRoom[state.roomId];
  if (state.rejoinRoomId === state.roomId && lastId) join.since = lastId;
  send(join);
}

// -- wiring -----------------------------------------------------------------

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  signIn('/auth/login');
});
$('register-button').addEventListener('click', () => {
  if ($('login-form').reportValidity()) signIn('/auth/register');
});
$('logout').addEventListener('click', endSession);

$('change-password').addEventListener('click', () => showPasswordForm($('password-form').hidden));
$('password-form').addEventListener('submit', (event) => {
  event.preventDefault();
  changePassword();
});
$('password-form').addEventListener('keydown', (event) => {
  if (event.key !== 'Escape') return;
  showPasswordForm(false);
  $('change-password').focus();
});

$('create-room-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  showError('');
  try {
    const room = await api('POST', '/rooms', {
      name: $('room-name').value, description: $('room-description').value,
      visibility: $('room-private').checked ? 'private' : 'public',
    });
    $('create-room-form').reset();
    addRoom({...room, member_count: 1});
    joinRoom(room.id);
  } catch (error) {
    showError(error.message);
  }
});

function sendMessage() {
  const content = $('message-input').value;
  if (!content.trim() || !state.joinedRoomId) return;
  const client_id = newClientId();
  state.unsent.push({content, client_id, room_id: state.joinedRoomId});
  send({type: 'send_message', content, client_id});
  $('message-input').value = '';
  fitComposer();
}

function fitComposer() {
  const input = $('message-input');
  input.style.height = 'auto';
  input.style.height = `${input.scrollHeight + 2}px`;
}

$('send-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sendMessage();
});
$('message-input').addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();  // Enter sends; Shift+Enter is a new line
    sendMessage();
  }
});
$('message-input').addEventListener('input', () => {
  fitComposer();
  if ($('message-input').value.trim()) tellTyping();
});

$('messages').addEventListener('scroll', () => {
  if (nearBottom()) $('new-messages').hidden = true;
  if ($('messages').scrollTop < 60) loadOlder();
});
$('new-messages').addEventListener('click', scrollToBottom);

$('leave-room').addEventListener('click', leaveRoom);
$('back-to-rooms').addEventListener('click', () => showPane('rooms'));
$('show-members').addEventListener('click', () => showPane('members'));
$('back-to-conversation').addEventListener('click', () => showPane('conversation'));

$('description-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    await api('PATCH', `/rooms/${encodeURIComponent(state.joinedRoomId)}`, {description: $('new-description').value});
    $('new-description').blur();
    $('creator-tools').open = false;
  } catch (error) {
    showError(error.message);
  }
});

$('delete-room').addEventListener('click', async () => {
  const roomId = state.joinedRoomId;
  if (!roomId || !confirm('Delete this room and all its messages?')) return;
  $('creator-tools').open = false;
  try {
    await api('DELETE', `/rooms/${encodeURIComponent(roomId)}`);
  } catch (error) {
    showError(error.message);
  }
});

// The controls inside messages (see actionsFor and editorFor) and rows come and go; one listener each.
$('messages').addEventListener('click', (event) => {
  const button = event.target.closest('button[data-control]');
  const action = button && MESSAGE_CONTROLS[button.dataset.control];
  if (action) action(Number(button.closest('li').dataset.id));
});
$('messages').addEventListener('submit', (event) => {
  event.preventDefault();  // the editor's form: "Save"
  saveEdit();
});
$('messages').addEventListener('input', (event) => {
  if (event.target.dataset.control === 'editor') state.editing.draft = event.target.value;
});
$('messages').addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && state.editing) stopEditing();
  else if (event.key === 'Escape' && state.confirmingDelete != null) cancelDelete();
  else if (event.target.dataset.control === 'editor' && event.key === 'Enter' && !event.shiftKey
           && !event.isComposing) {
    event.preventDefault();  // as in the composer: Enter saves, Shift+Enter is a new line
    saveEdit();
  }
});

$('member-list').addEventListener('click', (event) => {
  const button = event.target.closest('button[data-control]');
  const action = button && MEMBER_CONTROLS[button.dataset.control];
  if (action) action(button.closest('li').dataset.userId);
});
$('add-member').addEventListener('click', () => {
  showAddMemberForm($('add-member').getAttribute('aria-expanded') !== 'true');
});

$('search-form').addEventListener('submit', (event) => {
  event.preventDefault();
  searchMessages(false);
});
$('search-form').addEventListener('keydown', (event) => {
  if (event.key === 'Escape') closeSearch();
});
$('close-search').addEventListener('click', () => {
  closeSearch();
  $('search-input').focus();
});
$('more-results').addEventListener('click', () => searchMessages(true));
$('result-list').addEventListener('click', (event) => {
  const result = event.target.closest('button.result');
  if (result) openAt(result.dataset.roomId, Number(result.dataset.messageId));
});

$('notify').addEventListener('click', toggleNotifications);
// Back to a tab that was hidden: what arrived meanwhile is read now.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && state.joinedRoomId) readSoon();
});

$('report-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sendReport();
});
$('cancel-report').addEventListener('click', () => $('report-dialog').close());

$('reports').addEventListener('click', openReportsView);
$('close-reports').addEventListener('click', () => $('reports-view').close());
$('report-filter').addEventListener('change', listReports);
$('report-list').addEventListener('click', (event) => {
  const button = event.target.closest('button[data-control]');
  const action = button && REPORT_CONTROLS[button.dataset.control];
  if (action) action(Number(button.closest('li').dataset.reportId));
});

$('admin').addEventListener('click', openAdmin);
$('close-admin').addEventListener('click', () => $('admin-view').close());
$('user-list').addEventListener('click', (event) => {
  const button = event.target.closest('button[data-control]');
  const action = button && USER_CONTROLS[button.dataset.control];
  if (action) action(button.closest('li').dataset.userId);
});
$('user-list').addEventListener('submit', (event) => {
  event.preventDefault();  // "Save password"
  const userId = event.target.closest('li').dataset.userId;
  updateUser(userId, {password: event.target.querySelector('input').value}, 'has a new password and is signed out');
});

const embeddedToken = tokenFromFragment();
if (embeddedToken) signInWithToken(embeddedToken);
else if (state.token && state.user) showChat();
// A host that hands an open page a new token changes only the fragment, which loads nothing.
window.addEventListener('hashchange', () => {
  if (new URLSearchParams(location.hash.slice(1)).has('token')) location.reload();
});
