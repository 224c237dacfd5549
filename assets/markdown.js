// The deliverable's Markdown renderer. Model text is untrusted, so this never touches
// innerHTML: it parses the text into a small tree and builds DOM nodes with
// createElement and text nodes only. Raw HTML in the text stays visible text, links
// are kept only for http:, https: and mailto: targets, and images become links.
//
// Covered: ATX and setext headings, paragraphs, hard breaks, **bold**, *italic*,
// ~~strike~~, `code`, fenced code blocks (kept as text, also while still open during
// streaming), nested lists (bullets, numbers, tight and loose), blockquotes,
// horizontal rules, GFM tables, [links](url), <autolinks> and bare http(s) URLs.

const MAX_DEPTH = 24; // nesting bound: hostile input cannot blow the stack

const FENCE = /^( {0,3})(`{3,}|~{3,})(.*)$/;
const ATX = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const HR = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?/;
const LIST = /^( {0,3})([-*+]|\d{1,9}[.)])(?:([ \t]+)(.*))?$/;
const SETEXT_1 = /^ {0,3}=+[ \t]*$/;
const SETEXT_2 = /^ {0,3}-+[ \t]*$/;
const TABLE_DELIM = /^[ \t]*\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;
const PUNCT = /[!-/:-@[-`{-~]/;
const ALNUM = /[\p{L}\p{N}]/u;
const SPACE = /\s/;

/** The href to use for a link target, or null when the target is not allowed. */
export function safeHref(raw) {
  if (typeof raw !== 'string') return null;
  // Browsers drop tabs and newlines inside URLs ("java\tscript:"), so judge the
  // string with every control character and space removed.
  const s = raw.replace(/[\u0000-\u0020\u007f-\u009f]/g, '');
  if (!/^(https?:\/\/|mailto:)/i.test(s)) return null;
  let url;
  try {
    url = new URL(s);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:' && url.protocol !== 'mailto:') {
    return null;
  }
  return url.href;
}

// ---------------------------------------------------------------- blocks

const isBlank = (l) => /^[ \t]*$/.test(l);
const indentOf = (l) => /^ */.exec(l)[0].length;

function expandTabs(line) {
  // Leading tabs count as four columns; inner tabs are left alone.
  return line.replace(/^[ \t]+/, (m) => m.replace(/\t/g, '    '));
}

function fenceOpen(line) {
  const m = FENCE.exec(line);
  if (!m) return null;
  const fence = m[2];
  if (fence[0] === '`' && m[3].includes('`')) return null;
  return { indent: m[1].length, char: fence[0], len: fence.length, info: m[3].trim() };
}

function splitRow(line) {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|') && !s.endsWith('\\|')) s = s.slice(0, -1);
  const cells = [];
  let cur = '';
  let inCode = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && s[i + 1] === '|') {
      cur += '|';
      i++;
    } else if (c === '`') {
      inCode = !inCode;
      cur += c;
    } else if (c === '|' && !inCode) {
      cells.push(cur.trim());
      cur = '';
    } else {
      cur += c;
    }
  }
  cells.push(cur.trim());
  return cells;
}

function tableAt(lines, i) {
  if (i + 1 >= lines.length) return null;
  const head = lines[i];
  const delim = lines[i + 1];
  if (!head.includes('|') || !TABLE_DELIM.test(delim) || !delim.includes('-')) return null;
  const heads = splitRow(head);
  const aligns = splitRow(delim).map((c) => {
    const left = c.startsWith(':');
    const right = c.endsWith(':');
    return left && right ? 'center' : right ? 'right' : left ? 'left' : '';
  });
  if (heads.length !== aligns.length) return null;
  return { heads, aligns };
}

function interrupts(lines, i) {
  const line = lines[i];
  return (
    fenceOpen(line) !== null ||
    ATX.test(line) ||
    HR.test(line) ||
    QUOTE.test(line) ||
    LIST.test(line) ||
    tableAt(lines, i) !== null
  );
}

function listMarker(line) {
  const m = LIST.exec(line);
  if (!m) return null;
  const marker = m[2];
  const ordered = /\d/.test(marker[0]);
  const spaces = m[3] ? m[3].replace(/\t/g, '    ').length : 0;
  const text = m[4] ?? '';
  const indent = m[1].length;
  // A blank item or one with five or more spaces after the marker starts its
  // content one column after the marker.
  const pad = text === '' || spaces > 4 ? 1 : spaces;
  return {
    indent,
    ordered,
    kind: ordered ? marker.slice(-1) : marker,
    start: ordered ? parseInt(marker, 10) : 1,
    content: indent + marker.length + pad,
    text: spaces > 4 ? ' '.repeat(spaces - 1) + text : text,
  };
}

function parseBlocks(lines, depth) {
  const out = [];
  let i = 0;
  const n = lines.length;
  while (i < n) {
    const line = lines[i];
    if (isBlank(line)) {
      i++;
      continue;
    }

    const fence = fenceOpen(line);
    if (fence) {
      const body = [];
      i++;
      while (i < n) {
        const close = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(lines[i]);
        if (close && close[1][0] === fence.char && close[1].length >= fence.len) {
          i++;
          break;
        }
        const l = lines[i];
        body.push(l.slice(Math.min(fence.indent, indentOf(l))));
        i++;
      }
      const lang = fence.info.split(/\s+/)[0] || '';
      out.push({ t: 'code', lang, text: body.join('\n') });
      continue;
    }

    let m = ATX.exec(line);
    if (m) {
      out.push({ t: 'h', level: m[1].length, text: m[2] ?? '' });
      i++;
      continue;
    }

    if (HR.test(line)) {
      out.push({ t: 'hr' });
      i++;
      continue;
    }

    if (QUOTE.test(line)) {
      const inner = [];
      while (i < n) {
        const l = lines[i];
        if (QUOTE.test(l)) {
          inner.push(l.replace(QUOTE, ''));
        } else if (
          !isBlank(l) &&
          inner.length > 0 &&
          !isBlank(inner[inner.length - 1]) &&
          !interrupts(lines, i)
        ) {
          inner.push(l); // lazy continuation of the quoted paragraph
        } else {
          break;
        }
        i++;
      }
      out.push({ t: 'quote', blocks: depth < MAX_DEPTH ? parseBlocks(inner, depth + 1) : [] });
      continue;
    }

    const first = listMarker(line);
    if (first) {
      const list = { t: 'list', ordered: first.ordered, start: first.start, loose: false, items: [] };
      let item = first;
      while (item) {
        const body = [item.text];
        i++;
        let sawBlank = false;
        while (i < n) {
          const l = lines[i];
          if (isBlank(l)) {
            body.push('');
            sawBlank = true;
            i++;
            continue;
          }
          const ind = indentOf(l);
          if (ind >= item.content) {
            body.push(l.slice(item.content));
          } else if (ind > item.indent && listMarker(l)) {
            body.push(l.slice(ind)); // a nested list indented less than the content
          } else if (!sawBlank && !interrupts(lines, i)) {
            body.push(l.trimStart()); // lazy continuation of the item's paragraph
          } else {
            break;
          }
          sawBlank = false;
          i++;
        }
        let trailing = 0;
        while (body.length > 1 && isBlank(body[body.length - 1])) {
          body.pop();
          trailing++;
        }
        const blocks = depth < MAX_DEPTH ? parseBlocks(body, depth + 1) : [];
        if (body.some(isBlank) && blocks.filter((b) => b.t !== 'list').length > 1) list.loose = true;
        list.items.push(blocks);
        const next = i < n ? listMarker(lines[i]) : null;
        if (next && next.ordered === first.ordered && next.kind === first.kind && next.indent < item.content) {
          if (trailing > 0) list.loose = true;
          item = next;
        } else {
          item = null;
        }
      }
      out.push(list);
      continue;
    }

    const table = tableAt(lines, i);
    if (table) {
      const rows = [];
      i += 2;
      while (i < n && !isBlank(lines[i]) && lines[i].includes('|')) {
        const cells = splitRow(lines[i]);
        rows.push(table.heads.map((_, k) => cells[k] ?? ''));
        i++;
      }
      out.push({ t: 'table', aligns: table.aligns, heads: table.heads, rows });
      continue;
    }

    // A paragraph, possibly turned into a setext heading by its underline.
    const para = [line.trim()];
    i++;
    let heading = 0;
    while (i < n && !isBlank(lines[i])) {
      if (SETEXT_1.test(lines[i])) {
        heading = 1;
        i++;
        break;
      }
      if (SETEXT_2.test(lines[i])) {
        heading = 2;
        i++;
        break;
      }
      if (interrupts(lines, i)) break;
      para.push(lines[i].trim());
      i++;
    }
    const text = para.join('\n');
    out.push(heading ? { t: 'h', level: heading, text } : { t: 'p', text });
  }
  return out;
}

/** Parses Markdown into a tree of plain objects (blocks with raw inline text). */
export function parseMarkdown(src) {
  const text = String(src ?? '').replace(/\r\n?/g, '\n').replace(/\u0000/g, '\uFFFD');
  return parseBlocks(text.split('\n').map(expandTabs), 0);
}

// ---------------------------------------------------------------- inlines

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', mdash: '—', ndash: '–', hellip: '…', copy: '©' };

function decodeEntities(s) {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z]{2,8});/gi, (all, body) => {
    if (body[0] === '#') {
      const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      if (code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff)) return String.fromCodePoint(code);
      return '\uFFFD';
    }
    return ENTITIES[body.toLowerCase()] ?? all;
  });
}

const runLength = (s, i, ch) => {
  let j = i;
  while (s[j] === ch) j++;
  return j - i;
};

/** Where the code span opened by a run of `len` backticks ends, or -1. */
function codeClose(s, from, len) {
  let j = from;
  while (j < s.length) {
    const k = s.indexOf('`', j);
    if (k < 0) return -1;
    const run = runLength(s, k, '`');
    if (run === len) return k;
    j = k + run;
  }
  return -1;
}

/** Parses `[text](dest "title")` starting at the `[`; null when it is not a link. */
function parseLink(s, i) {
  let depth = 0;
  let j = i;
  for (; j < s.length; j++) {
    const c = s[j];
    if (c === '\\') {
      j++;
    } else if (c === '`') {
      const run = runLength(s, j, '`');
      const close = codeClose(s, j + run, run);
      j = close < 0 ? j + run - 1 : close + run - 1;
    } else if (c === '[') {
      depth++;
    } else if (c === ']') {
      depth--;
      if (depth === 0) break;
    }
  }
  if (depth !== 0 || s[j + 1] !== '(') return null;
  const text = s.slice(i + 1, j);
  let k = j + 2;
  while (s[k] === ' ' || s[k] === '\n') k++;
  let dest = '';
  if (s[k] === '<') {
    const end = s.indexOf('>', k);
    if (end < 0 || s.slice(k, end).includes('\n')) return null;
    dest = s.slice(k + 1, end);
    k = end + 1;
  } else {
    let parens = 0;
    const start = k;
    for (; k < s.length; k++) {
      const c = s[k];
      if (c === '\\' && PUNCT.test(s[k + 1] ?? '')) {
        k++;
      } else if (c === '(') {
        parens++;
      } else if (c === ')') {
        if (parens === 0) break;
        parens--;
      } else if (SPACE.test(c)) {
        break;
      }
    }
    dest = s.slice(start, k).replace(/\\([!-/:-@[-`{-~])/g, '$1');
  }
  while (s[k] === ' ' || s[k] === '\n') k++;
  let title = '';
  const q = s[k];
  if (q === '"' || q === "'" || q === '(') {
    const closeQ = q === '(' ? ')' : q;
    const end = s.indexOf(closeQ, k + 1);
    if (end < 0) return null;
    title = s.slice(k + 1, end);
    k = end + 1;
    while (s[k] === ' ' || s[k] === '\n') k++;
  }
  if (s[k] !== ')') return null;
  return { text, dest, title, end: k + 1 };
}

const BARE_URL = /^https?:\/\/[^\s<>"]*[^\s<>".,:;'!?)\]*_~]/i;
const AUTOLINK = /^<([a-z][a-z0-9+.-]{1,31}:[^\s<>]*)>/i;
const EMAIL_AUTOLINK = /^<([a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+)>/i;

function plainText(nodes) {
  return nodes.map((n) => (n.t === 'text' || n.t === 'code' ? n.v : n.c ? plainText(n.c) : '')).join('');
}

function parseInline(s, depth = 0, inLink = false) {
  const out = [];
  let buf = '';
  const flush = () => {
    if (buf) out.push({ t: 'text', v: decodeEntities(buf) });
    buf = '';
  };
  const push = (node) => {
    flush();
    out.push(node);
  };
  let i = 0;
  while (i < s.length) {
    const c = s[i];

    if (c === '\\') {
      const next = s[i + 1];
      if (next === '\n') {
        push({ t: 'br' });
        i += 2;
      } else if (next !== undefined && PUNCT.test(next)) {
        push({ t: 'text', v: next });
        i += 2;
      } else {
        buf += c;
        i++;
      }
      continue;
    }

    if (c === '`') {
      const run = runLength(s, i, '`');
      const close = codeClose(s, i + run, run);
      if (close < 0) {
        buf += s.slice(i, i + run);
        i += run;
        continue;
      }
      let code = s.slice(i + run, close).replace(/\n/g, ' ');
      if (code.length > 2 && code.startsWith(' ') && code.endsWith(' ') && code.trim() !== '') {
        code = code.slice(1, -1);
      }
      push({ t: 'code', v: code });
      i = close + run;
      continue;
    }

    if (c === '!' && s[i + 1] === '[' && depth < MAX_DEPTH) {
      const link = parseLink(s, i + 1);
      if (link) {
        const alt = plainText(parseInline(link.text, depth + 1, true)) || 'image';
        const href = inLink ? null : safeHref(link.dest);
        push(href ? { t: 'link', href, title: link.title, c: [{ t: 'text', v: `🖼 ${alt}` }] } : { t: 'text', v: s.slice(i, link.end) });
        i = link.end;
        continue;
      }
    }

    if (c === '[' && !inLink && depth < MAX_DEPTH) {
      const link = parseLink(s, i);
      if (link) {
        const href = safeHref(link.dest);
        // A link to anything else (javascript:, data:, a relative path) stays as
        // the text the model wrote, so the reader sees what was there.
        push(href ? { t: 'link', href, title: link.title, c: parseInline(link.text, depth + 1, true) } : { t: 'text', v: s.slice(i, link.end) });
        i = link.end;
        continue;
      }
    }

    if (c === '<') {
      const rest = s.slice(i, i + 2100);
      let m = AUTOLINK.exec(rest);
      if (m) {
        const href = inLink ? null : safeHref(m[1]);
        push(href ? { t: 'link', href, title: '', c: [{ t: 'text', v: m[1] }] } : { t: 'text', v: m[0] });
        i += m[0].length;
        continue;
      }
      m = EMAIL_AUTOLINK.exec(rest);
      if (m) {
        const href = inLink ? null : safeHref(`mailto:${m[1]}`);
        push(href ? { t: 'link', href, title: '', c: [{ t: 'text', v: m[1] }] } : { t: 'text', v: m[0] });
        i += m[0].length;
        continue;
      }
    }

    if ((c === 'h' || c === 'H') && !inLink && !ALNUM.test(s[i - 1] ?? ' ')) {
      const m = BARE_URL.exec(s.slice(i, i + 2100));
      if (m) {
        const href = safeHref(m[0]);
        if (href) {
          push({ t: 'link', href, title: '', c: [{ t: 'text', v: m[0] }] });
          i += m[0].length;
          continue;
        }
      }
    }

    if (c === '*' || c === '_' || c === '~') {
      const run = runLength(s, i, c);
      const before = s[i - 1] ?? ' ';
      const after = s[i + run] ?? ' ';
      const left = !SPACE.test(after) && (!PUNCT.test(after) || SPACE.test(before) || PUNCT.test(before));
      const right = !SPACE.test(before) && (!PUNCT.test(before) || SPACE.test(after) || PUNCT.test(after));
      let canOpen = left;
      let canClose = right;
      if (c === '_') {
        canOpen = left && (!right || PUNCT.test(before));
        canClose = right && (!left || PUNCT.test(after));
      } else if (c === '~' && run !== 2) {
        canOpen = false;
        canClose = false;
      }
      flush();
      out.push({ t: 'delim', ch: c, count: run, orig: run, canOpen, canClose });
      i += run;
      continue;
    }

    if (c === '\n') {
      if (/ {2,}$/.test(buf)) {
        buf = buf.replace(/ +$/, '');
        push({ t: 'br' });
      } else {
        buf = buf.replace(/ +$/, '') + '\n';
      }
      i++;
      continue;
    }

    buf += c;
    i++;
  }
  flush();
  return mergeText(resolveEmphasis(out));
}

export { parseInline };

const delimText = (d) => (d.t === 'delim' ? { t: 'text', v: d.ch.repeat(d.count) } : d);

/**
 * Pairs the delimiter runs (`*`, `_`, `~~`) into em, strong and del, CommonMark's
 * "process emphasis" in short: each closer takes the nearest opener before it.
 * Unpaired runs become text. Quadratic at worst, never exponential.
 */
function resolveEmphasis(items) {
  let i = 0;
  while (i < items.length) {
    const closer = items[i];
    if (closer.t !== 'delim' || !closer.canClose || closer.count === 0) {
      i++;
      continue;
    }
    let found = -1;
    for (let j = i - 1; j >= 0; j--) {
      const o = items[j];
      if (o.t !== 'delim' || o.ch !== closer.ch || !o.canOpen || o.count === 0) continue;
      if (closer.ch === '~') {
        found = j;
        break;
      }
      // The "rule of 3": a run that can both open and close pairs only when the
      // lengths do not add up to a multiple of three (unless both are).
      if ((o.canClose || closer.canOpen) && (o.orig + closer.orig) % 3 === 0 && !(o.orig % 3 === 0 && closer.orig % 3 === 0)) continue;
      found = j;
      break;
    }
    if (found < 0) {
      i++;
      continue;
    }
    const opener = items[found];
    const use = closer.ch === '~' ? 2 : opener.count >= 2 && closer.count >= 2 ? 2 : 1;
    const inner = items.slice(found + 1, i).map(delimText);
    const node = closer.ch === '~' ? { t: 'del', c: mergeText(inner) } : { t: use === 2 ? 'strong' : 'em', c: mergeText(inner) };
    opener.count -= use;
    closer.count -= use;
    items.splice(found + 1, i - found - 1, node);
    i = found + 2;
    if (opener.count === 0) {
      items.splice(found, 1);
      i--;
    }
    if (closer.count === 0) items.splice(i, 1);
  }
  return items.map(delimText);
}

function mergeText(nodes) {
  const out = [];
  for (const n of nodes) {
    const prev = out[out.length - 1];
    if (n.t === 'text' && prev?.t === 'text') prev.v += n.v;
    else if (n.t !== 'text' || n.v !== '') out.push(n);
  }
  return out;
}

// ---------------------------------------------------------------- DOM

function inlineNodes(nodes, parent, doc) {
  for (const n of nodes) {
    switch (n.t) {
      case 'text':
        parent.appendChild(doc.createTextNode(n.v));
        break;
      case 'br':
        parent.appendChild(doc.createElement('br'));
        break;
      case 'code': {
        const el = doc.createElement('code');
        el.textContent = n.v;
        parent.appendChild(el);
        break;
      }
      case 'em':
      case 'strong':
      case 'del': {
        const el = doc.createElement(n.t);
        inlineNodes(n.c, el, doc);
        parent.appendChild(el);
        break;
      }
      case 'link': {
        const a = doc.createElement('a');
        a.href = n.href;
        a.rel = 'noopener noreferrer nofollow ugc';
        a.target = '_blank';
        if (n.title) a.title = n.title;
        inlineNodes(n.c, a, doc);
        parent.appendChild(a);
        break;
      }
      default:
        break;
    }
  }
}

function blockNode(b, doc, tight) {
  switch (b.t) {
    case 'h': {
      const el = doc.createElement(`h${b.level}`);
      inlineNodes(parseInline(b.text.trim()), el, doc);
      return el;
    }
    case 'p': {
      if (tight) {
        const frag = doc.createDocumentFragment();
        inlineNodes(parseInline(b.text), frag, doc);
        return frag;
      }
      const el = doc.createElement('p');
      inlineNodes(parseInline(b.text), el, doc);
      return el;
    }
    case 'code': {
      const pre = doc.createElement('pre');
      const code = doc.createElement('code');
      if (/^[a-z0-9_+#.-]{1,24}$/i.test(b.lang)) {
        code.className = `language-${b.lang.toLowerCase()}`;
        pre.dataset.lang = b.lang.toLowerCase();
      }
      code.textContent = b.text;
      pre.appendChild(code);
      return pre;
    }
    case 'hr':
      return doc.createElement('hr');
    case 'quote': {
      const el = doc.createElement('blockquote');
      for (const child of b.blocks) el.appendChild(blockNode(child, doc, false));
      return el;
    }
    case 'list': {
      const el = doc.createElement(b.ordered ? 'ol' : 'ul');
      if (b.ordered && b.start !== 1) el.start = b.start;
      for (const item of b.items) {
        const li = doc.createElement('li');
        for (const child of item) li.appendChild(blockNode(child, doc, !b.loose));
        el.appendChild(li);
      }
      return el;
    }
    case 'table': {
      const wrap = doc.createElement('div');
      wrap.className = 'table-wrap';
      const table = doc.createElement('table');
      const thead = doc.createElement('thead');
      const tr = doc.createElement('tr');
      b.heads.forEach((h, k) => {
        const th = doc.createElement('th');
        th.scope = 'col';
        if (b.aligns[k]) th.className = `align-${b.aligns[k]}`;
        inlineNodes(parseInline(h), th, doc);
        tr.appendChild(th);
      });
      thead.appendChild(tr);
      table.appendChild(thead);
      const tbody = doc.createElement('tbody');
      for (const row of b.rows) {
        const rtr = doc.createElement('tr');
        row.forEach((cell, k) => {
          const td = doc.createElement('td');
          if (b.aligns[k]) td.className = `align-${b.aligns[k]}`;
          inlineNodes(parseInline(cell), td, doc);
          rtr.appendChild(td);
        });
        tbody.appendChild(rtr);
      }
      table.appendChild(tbody);
      wrap.appendChild(table);
      return wrap;
    }
    default:
      return doc.createDocumentFragment();
  }
}

/** Renders Markdown into a DocumentFragment of safe DOM nodes. */
export function renderMarkdown(src, doc = globalThis.document) {
  const frag = doc.createDocumentFragment();
  for (const b of parseMarkdown(src)) frag.appendChild(blockNode(b, doc, false));
  return frag;
}
