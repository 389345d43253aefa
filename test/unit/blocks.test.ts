import { describe, expect, it } from 'vitest';
import {
  bold,
  channelLink,
  code,
  codeBlock,
  escapeMrkdwn,
  HERE,
  joinMd,
  md,
  mention,
  message,
  rebuilt,
  sections,
  unescapeSlackText,
  type Mrkdwn,
} from '../../src/delivery/slack/blocks.js';
import { codeSpan } from '../../src/shared/text.js';

function chunkTexts(text: string | Mrkdwn, limit?: number): string[] {
  return sections(typeof text === 'string' ? md`${text}` : text, limit).map((b) => {
    expect(b.type).toBe('section');
    const t = (b as { text: { type: string; text: string } }).text;
    expect(t.type).toBe('mrkdwn');
    return t.text;
  });
}

/** Every Slack special form: broadcasts, a user group, a user, a channel, a link with a label, an entity. */
const HOSTILE =
  '<!channel> <!here> <!everyone> <!subteam^S0TEAM> <@U0CEO> <#C0OTHER> <https://evil.example|docs> &amp;';
const HOSTILE_ESCAPED =
  '&lt;!channel&gt; &lt;!here&gt; &lt;!everyone&gt; &lt;!subteam^S0TEAM&gt; &lt;@U0CEO&gt; &lt;#C0OTHER&gt; &lt;https://evil.example|docs&gt; &amp;amp;';

describe('escapeMrkdwn / unescapeSlackText', () => {
  it('escapes exactly &, < and >', () => {
    expect(escapeMrkdwn(`a & b < c > d "e" 'f' *g* _h_ \`i\``).text).toBe(
      `a &amp; b &lt; c &gt; d "e" 'f' *g* _h_ \`i\``,
    );
    expect(escapeMrkdwn('&amp;').text).toBe('&amp;amp;');
    expect(escapeMrkdwn('').text).toBe('');
  });

  it('unescape gives back what the user typed, including typed entities', () => {
    expect(unescapeSlackText('a &amp; b &lt;c&gt;')).toBe('a & b <c>');
    expect(unescapeSlackText('&amp;lt;')).toBe('&lt;');
    for (const s of ['<b>&amp;</b>', '&&<<>>', 'plain', '&lt;&gt;&amp;', '🔥 &gt;'])
      expect(unescapeSlackText(escapeMrkdwn(s).text)).toBe(s);
  });
});

describe('md', () => {
  it('escapes every interpolated string and number, and keeps its own literal markup', () => {
    expect(md`*${HOSTILE}* <@U0LEAD> ${42}`.text).toBe(`*${HOSTILE_ESCAPED}* <@U0LEAD> 42`);
  });

  it('inserts Mrkdwn as it is: mentions, code, nested md', () => {
    const inner = md`${'a<b'} ${mention('U0CTO')}`;
    expect(md`[${inner}] ${code('x')} ${HERE}`.text).toBe('[a&lt;b <@U0CTO>] `x` <!here>');
  });

  it('never escapes twice', () => {
    const once = md`${'&'}`;
    expect(md`${once}`.text).toBe('&amp;');
    expect(rebuilt(once.text).text).toBe('&amp;');
  });

  it('joinMd escapes strings, keeps Mrkdwn, and escapes a string separator too', () => {
    expect(joinMd(['<a>', mention('U0ONCALL'), bold('b&c')], ' & ').text).toBe(
      '&lt;a&gt; &amp; <@U0ONCALL> &amp; *b&amp;c*',
    );
  });

  it('a Mrkdwn cannot be made outside the module', () => {
    const Ctor = md``.constructor as new (token: symbol, text: string) => Mrkdwn;
    expect(() => new Ctor(Symbol('built here'), '<!channel>')).toThrow(/built with md/);
  });
});

describe('mention and channelLink', () => {
  it('mentions Slack user IDs', () => {
    expect(mention('U0ONCALL').text).toBe('<@U0ONCALL>');
    expect(mention('W0ENTERPRISE').text).toBe('<@W0ENTERPRISE>');
  });

  it('shows anything else as escaped text', () => {
    expect(mention('lifeline').text).toBe('lifeline');
    expect(mention('<!channel>').text).toBe('&lt;!channel&gt;');
    expect(mention('U0ONCALL> <!here').text).toBe('U0ONCALL&gt; &lt;!here');
    expect(mention('').text).toBe('');
  });

  it('links channel IDs and escapes anything else', () => {
    expect(channelLink('C0EMERGENCY').text).toBe('<#C0EMERGENCY>');
    expect(channelLink('C0X|evil> <!channel').text).toBe('C0X|evil&gt; &lt;!channel');
  });
});

describe('code and codeBlock', () => {
  it('shows SQL as inline code: nothing in it is formatted, &, < and > are entities', () => {
    expect(code('SELECT COUNT(*) FROM users WHERE a < 3 AND b > 1 & c').text).toBe(
      '`SELECT COUNT(*) FROM users WHERE a &lt; 3 AND b &gt; 1 &amp; c`',
    );
  });

  it('a backtick inside cannot end the span early, and a line break cannot split it', () => {
    expect(code('SELECT `name` FROM t').text).toBe('`SELECT \u02CBname\u02CB FROM t`');
    expect(code('SELECT 1\n  FROM t\r\nWHERE x').text).toBe('`SELECT 1 FROM t WHERE x`');
    expect(code('<!channel>').text).toBe('`&lt;!channel&gt;`');
  });

  it('a code block escapes every line and cannot be closed from inside', () => {
    expect(codeBlock(['a <@U0CEO>', 'b ``` <!here> &']).text).toBe(
      "```\na &lt;@U0CEO&gt;\nb ''' &lt;!here&gt; &amp;\n```",
    );
  });
});

describe('escapeMrkdwn on Lifeline texts', () => {
  it('escapes every special form: people reach Slack only as Said parts, never from text', () => {
    expect(escapeMrkdwn('cancelled by <@U0LEAD> in <#C0EMERGENCY>').text).toBe(
      'cancelled by &lt;@U0LEAD&gt; in &lt;#C0EMERGENCY&gt;',
    );
    expect(escapeMrkdwn(HOSTILE).text).toBe(
      '&lt;!channel&gt; &lt;!here&gt; &lt;!everyone&gt; &lt;!subteam^S0TEAM&gt; &lt;@U0CEO&gt; &lt;#C0OTHER&gt; &lt;https://evil.example|docs&gt; &amp;amp;',
    );
    expect(escapeMrkdwn('<@U0LEAD|name> <@u0lead> <#C0X|x>').text).toBe(
      '&lt;@U0LEAD|name&gt; &lt;@u0lead&gt; &lt;#C0X|x&gt;',
    );
  });

  it('escapes code spans whole: data in them never becomes a mention', () => {
    const line = `${codeSpan('SELECT name FROM users')} → ${codeSpan('<@U0CEO> <!channel>')}`;
    expect(escapeMrkdwn(line).text).toBe('`SELECT name FROM users` → `&lt;@U0CEO&gt; &lt;!channel&gt;`');
  });
});

describe('message', () => {
  it('puts the body in sections and the fallback in text, both escaped', () => {
    expect(message(md`*${'a<b'}*`, md`${'x&y'}`)).toEqual({
      text: 'x&amp;y',
      blocks: [{ type: 'section', text: { type: 'mrkdwn', text: '*a&lt;b*' } }],
    });
  });
});

describe('sections', () => {
  it('short text is one section block', () => {
    expect(sections(md`hello\nworld`)).toEqual([{ type: 'section', text: { type: 'mrkdwn', text: 'hello\nworld' } }]);
  });

  it('empty text gives no blocks', () => {
    expect(sections(md``)).toEqual([]);
  });

  it('text of exactly the limit is one block', () => {
    expect(chunkTexts('a'.repeat(3000))).toEqual(['a'.repeat(3000)]);
    expect(chunkTexts(`${'a'.repeat(1499)}\n${'b'.repeat(1500)}`)).toEqual([
      `${'a'.repeat(1499)}\n${'b'.repeat(1500)}`,
    ]);
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
    expect(chunkTexts(`head\n${long}\ntail`)).toEqual([
      'head',
      'z'.repeat(3000),
      'z'.repeat(3000),
      `${'z'.repeat(1000)}\ntail`,
    ]);
  });

  it('honours a custom limit', () => {
    expect(chunkTexts('aaa\nbbb\nccc', 7)).toEqual(['aaa\nbbb', 'ccc']);
  });

  it('never returns more than 50 blocks', () => {
    const text = Array.from({ length: 80 }, (_, i) => `${i}`.padEnd(3000, '.')).join('\n');
    const blocks = sections(md`${text}`);
    expect(blocks).toHaveLength(50);
    expect(chunkTexts(text)[49]!.startsWith('49')).toBe(true);
  });

  it('cuts an over-long line before an entity or a mention, never inside one', () => {
    const line = md`${'a'.repeat(2_997)}${'<'}${'b'.repeat(10)} ${mention('U0ONCALL')}`;
    const chunks = chunkTexts(line);
    expect(chunks[0]).toBe('a'.repeat(2_997));
    expect(chunks[1]!.startsWith('&lt;')).toBe(true);
    const withMention = md`${'a'.repeat(2_990)}${mention('U0ONCALL')}tail`;
    expect(chunkTexts(withMention)).toEqual(['a'.repeat(2_990), '<@U0ONCALL>tail']);
  });
});
