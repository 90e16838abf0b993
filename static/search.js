// Searching messages: the search box above the rooms, the results under it
// (where, who, when, the words that matched, marked, and the names of its
// files), "More results",
// and choosing a result, which opens its room at it (messages.js's
// openAt). The server decides what matches and who may read it; this only
// asks (GET /search) and draws the answer from text nodes.

import {state} from './state.js';
import {$, element, isolated, isolatedString} from './dom.js';
import {api} from './api.js';
import {roomName} from './rooms.js';
import {openAt} from './messages.js';
import {attachmentNames} from './attachments.js';

const RESULTS = 20;                 // search results per request
const EXCERPT = 160;                // characters of a long message shown in a search result

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

export function closeSearch() {
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
  const button = element('button', meta, text, ...attachmentNames(message.attachments));
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

// -- wiring -----------------------------------------------------------------

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
