// The baseline for ack latency: a bare @slack/bolt App in HTTP mode whose /incident handler only calls ack().
// Run as a child process by the benchmark; same signing secret and same fake Slack (clientOptions.slackApiUrl).
import bolt from '@slack/bolt';

const { App, LogLevel } = bolt;
const port = Number(process.env.PORT);

const app = new App({
  token: process.env.SLACK_BOT_TOKEN,
  signingSecret: process.env.SLACK_SIGNING_SECRET,
  clientOptions: { slackApiUrl: process.env.SLACK_API_URL },
  logLevel: LogLevel.WARN,
  port,
});

app.command('/incident', async ({ ack }) => {
  await ack();
});

await app.start(port);
console.log('bare app started');

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 5_000).unref();
  void app.stop().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
