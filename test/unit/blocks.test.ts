import { describe, expect, it } from 'vitest';
import { escapeMrkdwn, mention, sections, unescapeSlackText } from '../../src/slack/blocks.js';

function chunkTexts(text: string, limit?: number): string[] {
  return sections(text, limit).map((b) => {
    expect(b.type).toBe('section');
    const t = (b as { text: { type: string; text: string } }).text;
    expect(t.type).toBe('mrkdwn');
    return t.text;
  });
}

describe('escapeMrkdwn / unescapeSlackText', () => {
  it('escapes exactly &, < and >', () => {
    expect(escapeMrkdwn(`a & b < c > d "e" 'f' *g* _h_ \`i\``)).toBe(`a &amp; b &lt; c &gt; d "e" 'f' *g* _h_ \`i\``);
    expect(escapeMrkdwn('&amp;')).toBe('&amp;amp;');
    expect(escapeMrkdwn('')).toBe('');
  });

  it('unescape gives back what the user typed, including typed entities', () => {
    expect(unescapeSlackText('a &amp; b &lt;c&gt;')).toBe('a & b <c>');
    expect(unescapeSlackText('&amp;lt;')).toBe('&lt;');
    for (const s of ['<b>&amp;</b>', '&&<<>>', 'plain', '&lt;&gt;&amp;', '🔥 &gt;']) expect(unescapeSlackText(escapeMrkdwn(s))).toBe(s);
  });
});

describe('mention', () => {
  it('mentions Slack user IDs', () => {
    expect(mention('U0ONCALL')).toBe('<@U0ONCALL>');
    expect(mention('W0ENTERPRISE')).toBe('<@W0ENTERPRISE>');
  });

  it('shows anything else as escaped text', () => {
    expect(mention('lifeline')).toBe('lifeline');
    expect(mention('<!channel>')).toBe('&lt;!channel&gt;');
    expect(mention('U0ONCALL> <!here')).toBe('U0ONCALL&gt; &lt;!here');
    expect(mention('')).toBe('');
  });
});

describe('sections', () => {
  it('short text is one section block', () => {
    expect(sections('hello\nworld')).toEqual([{ type: 'section', text: { type: 'mrkdwn', text: 'hello\nworld' } }]);
  });

  it('empty text gives no blocks', () => {
    expect(sections('')).toEqual([]);
  });

  it('text of exactly the limit is one block', () => {
    expect(chunkTexts('a'.repeat(3000))).toEqual(['a'.repeat(3000)]);
    expect(chunkTexts(`${'a'.repeat(1499)}\n${'b'.repeat(1500)}`)).toEqual([`${'a'.repeat(1499)}\n${'b'.repeat(1500)}`]);
  });

  it('splits at line ends, never mid-line', () => {
    const lines = Array.from({ length: 4 }, (_, i) => String(i).repeat(1000));
    expect(chunkTexts(lines.join('\n'))).toEqual([`${lines[0]}\n${lines[1]}`, `${lines[2]}\n${lines[3]}`]);
  });

  it('keeps every line whole and in order for many uneven lines', () => {
    const lines: string[] = [];
    let seed = 7;
    for (let i = 0; i < 150; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      lines.push(`${i}:`.padEnd(5 + (seed % 300), 'x'));
    }
    const text = lines.join('\n');
    const chunks = chunkTexts(text, 1000);
    expect(chunks.length).toBeGreaterThan(10);
    expect(chunks.length).toBeLessThan(50);
    for (const c of chunks) expect(c.length).toBeLessThanOrEqual(1000);
    expect(chunks.join('\n')).toBe(text);
    expect(chunks.flatMap((c) => c.split('\n'))).toEqual(lines);
    // Each chunk is as full as it can be: the next line would not have fitted.
    for (let i = 0; i < chunks.length - 1; i++) {
      const firstOfNext = chunks[i + 1]!.split('\n')[0]!;
      expect(chunks[i]!.length + 1 + firstOfNext.length).toBeGreaterThan(1000);
    }
  });

  it('cuts a single line only when it alone exceeds the limit', () => {
    const long = 'z'.repeat(7000);
    expect(chunkTexts(long)).toEqual(['z'.repeat(3000), 'z'.repeat(3000), 'z'.repeat(1000)]);
    expect(chunkTexts(`head\n${long}\ntail`)).toEqual(['head', 'z'.repeat(3000), 'z'.repeat(3000), `${'z'.repeat(1000)}\ntail`]);
  });

  it('honours a custom limit', () => {
    expect(chunkTexts('aaa\nbbb\nccc', 7)).toEqual(['aaa\nbbb', 'ccc']);
  });

  it('never returns more than 50 blocks', () => {
    const text = Array.from({ length: 80 }, (_, i) => `${i}`.padEnd(3000, '.')).join('\n');
    const blocks = sections(text);
    expect(blocks).toHaveLength(50);
    expect(chunkTexts(text)[49]!.startsWith('49')).toBe(true);
  });
});
