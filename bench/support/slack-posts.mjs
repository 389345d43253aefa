// Reading what Lifeline posted to the fake Slack: message blocks, the Approve button of a plan, and the last posts,
// replies and log lines to attach to an error.

export function blocksOf(post) {
  if (Array.isArray(post.blocks)) return post.blocks;
  if (typeof post.blocks === 'string') {
    try {
      return JSON.parse(post.blocks);
    } catch {
      return [];
    }
  }
  return [];
}

export function approveButtonOf(post) {
  for (const block of blocksOf(post)) {
    if (block.type !== 'actions' || !Array.isArray(block.elements)) continue;
    const button = block.elements.find((e) => e.type === 'button' && e.action_id === 'job_approve');
    if (button) return { value: String(button.value), blockId: String(block.block_id ?? '') };
  }
  return undefined;
}

export function lastWords(slack, lifeline) {
  const texts = [
    ...slack.posts.slice(-5).map((p) => `post: ${p.text.slice(0, 300)}`),
    ...slack.responses.slice(-3).map((r) => `reply: ${r.text.slice(0, 300)}`),
  ];
  return `\n${texts.join('\n')}\nlifeline log:\n${lifeline.tail.slice(-10).join('\n')}`;
}
