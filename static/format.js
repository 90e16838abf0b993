// What a message may hold: code, emphasis, links and @you. formatted()
// turns a message's text into nodes, each built with createElement and
// text nodes: nothing a user wrote is ever parsed as HTML, so "<b>" in a
// message is just those letters. It knows nothing of the page's state:
// the caller says whose mentions to mark, and where the nodes go. Also
// shortTime, a time of day as the page shows one (a mute's end, slow mode).

import {element, isolated} from './dom.js';

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

// A message's text as nodes, with @me (the reader's username) marked:
// fenced blocks first (nothing inside them is formatted), then the rest.
// The line break beside a block is the block's own.
export function formatted(text, me) {
  const nodes = [];
  let at = 0;
  for (const fence of text.matchAll(FENCE)) {
    nodes.push(...inline(text.slice(at, fence.index).replace(/\n$/, ''), me), element('pre', fence[1]));
    at = fence.index + fence[0].length;
    if (text[at] === '\n') at += 1;
  }
  nodes.push(...inline(text.slice(at), me));
  return nodes;
}

// Code, bold, italic, links and @you within a stretch of text. Bold and
// italic may hold the others; code holds only its letters.
function inline(text, me) {
  const pattern = new RegExp(INLINE.source, INLINE.flags);  // its own lastIndex: this recurses
  const nodes = [];
  let at = 0;
  for (let match; (match = pattern.exec(text));) {
    const [node, length] = inlineNode(match, me);
    if (!node) continue;  // an @name that is not ours, or a URL that is not one: plain text
    nodes.push(text.slice(at, match.index), node);
    at = pattern.lastIndex = match.index + length;
  }
  nodes.push(text.slice(at));
  return nodes.filter((node) => node !== '');
}

// The element for one INLINE match, and how much of the text it took.
function inlineNode(match, me) {
  const {code, strong, em, url, name} = match.groups;
  if (code !== undefined) return [element('code', code), match[0].length];
  if (strong !== undefined) return [element('strong', ...inline(strong, me)), match[0].length];
  if (em !== undefined) return [element('em', ...inline(em, me)), match[0].length];
  if (url !== undefined) return linkNode(url);
  // "@bob." at the end of a sentence mentions bob, as on the server.
  const mine = me.toLowerCase();
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

// 10:45, or 10:45:30 where seconds matter (slow mode), in the reader's own way of writing times.
export function shortTime(date, seconds = false) {
  return date.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', ...(seconds && {second: '2-digit'})});
}
