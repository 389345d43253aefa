// Everything a benchmark starts is registered here, so that it is undone on success, failure, timeout or signal:
// child processes are killed by their own pid, databases dropped, Redis keys deleted.
const cleanups = [];
const children = new Set();

/** Registers an async undo step; returns a function that runs it now (once) and unregisters it. */
export function onCleanup(name, fn) {
  const entry = { name, fn, done: false };
  cleanups.push(entry);
  return async () => {
    const i = cleanups.indexOf(entry);
    if (i >= 0) cleanups.splice(i, 1);
    await runOne(entry);
  };
}

async function runOne(entry, timeoutMs = 20_000) {
  if (entry.done) return;
  entry.done = true;
  let timer;
  try {
    await Promise.race([
      entry.fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`cleanup "${entry.name}" took over ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    console.error(`bench: cleanup "${entry.name}" failed: ${err.message}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs every registered undo step, newest first. */
export async function runCleanups() {
  while (cleanups.length > 0) await runOne(cleanups.pop());
}

/** Remembers a child process so that it is SIGKILLed, by pid, if the benchmark process exits with it still alive. */
export function trackChild(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

process.once('exit', () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});
