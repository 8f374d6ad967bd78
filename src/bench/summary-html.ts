// The bench summary (markdownReport's output) as HTML for report.html.
// Only the markdown that report writes: a `# ` title, `|` tables with a
// `|---|` rule, paragraphs, **bold** and `code`. Anything else shows as
// a plain paragraph, escaped.

export function summaryHtml(markdown: string): string {
  const out: string[] = [];
  const blocks = markdown.trim().split(/\n\s*\n/);
  for (const block of blocks) {
    const lines = block.split('\n');
    if (lines[0].startsWith('# ')) {
      out.push(`<h1>${inline(lines[0].slice(2))}</h1>`);
      if (lines.length > 1) out.push(`<p>${lines.slice(1).map(inline).join(' ')}</p>`);
    } else if (lines.every((line) => line.startsWith('|'))) {
      out.push(table(lines));
    } else {
      out.push(`<p>${lines.map(inline).join(' ')}</p>`);
    }
  }
  return out.join('\n');
}

function table(lines: string[]): string {
  const rows = lines.filter((line) => !/^\|[-|: ]*-[-|: ]*\|$/.test(line)).map(cells);
  const [head, ...body] = rows;
  const headed = head.some((cell) => cell !== '');
  const row = (cellsOf: string[], tag: string) =>
    `<tr>${cellsOf.map((c) => `<${tag}>${inline(c)}</${tag}>`).join('')}</tr>`;
  return (
    '<table>' +
    (headed ? `<thead>${row(head, 'th')}</thead>` : '') +
    `<tbody>${body.map((r) => row(r, 'td')).join('')}</tbody></table>`
  );
}

function cells(line: string): string[] {
  return line
    .slice(1, line.endsWith('|') ? -1 : undefined)
    .split('|')
    .map((cell) => cell.trim());
}

/** Escapes, then turns `code` and **bold** into tags. */
function inline(text: string): string {
  return escapeHtml(text)
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
}

export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"]/g,
    (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[ch] as string,
  );
}
