// Drives Spillway with Janode's Streaming plugin module, as a Node.js app
// would, unchanged. Run by tests/e2e (TestJanodeStreaming):
//
//   node janode-streaming.mjs <ws-url> <answer-url>
//
// <answer-url> takes an SDP offer (POST body) and returns the answer of a
// real WebRTC stack (a pion PeerConnection in the Go test). Every step
// prints one JSON line; any reply Janode does not recognise makes it throw,
// and the script exits non-zero.
import Janode from 'janode';
import StreamingPlugin from 'janode/plugins/streaming';

const [wsURL, answerURL] = process.argv.slice(2);
if (!wsURL || !answerURL) {
  console.error('usage: node janode-streaming.mjs <ws-url> <answer-url>');
  process.exit(2);
}

const step = (name, data) => console.log(JSON.stringify({ step: name, data }));
const fail = (msg) => { throw new Error(msg); };
const withTimeout = (p, ms, what) => Promise.race([
  p, new Promise((_, rej) => setTimeout(() => rej(new Error(`timeout: ${what}`)), ms)),
]);

Janode.Logger.setLevel('warning');

const connection = await Janode.connect({ is_admin: false, address: { url: wsURL } });
try {
  const info = await connection.getInfo();
  if (!info.plugins || !info.plugins['janus.plugin.streaming']) fail('info: no streaming plugin');
  step('info', { name: info.name, version_string: info.version_string });

  const session = await connection.create();
  const handle = await session.attach(StreamingPlugin);

  const list = await handle.list();
  if (!Array.isArray(list.list) || !list.list.some((m) => m.id === 1)) fail('list: mountpoint 1 missing');
  step('list', list.list.map((m) => ({ id: m.id, description: m.description, media: m.media })));

  const created = await handle.createRtpMountpoint({
    name: 'janode-test', description: 'created by Janode',
    media: [
      { type: 'video', mid: 'v', port: 0, pt: 96, codec: 'vp8' },
      { type: 'audio', mid: 'a', port: 0, pt: 111, codec: 'opus' },
    ],
  });
  if (typeof created.id !== 'number' || created.id <= 0) fail(`create: bad id ${created.id}`);
  step('create', created);

  const mpInfo = await handle.info({ id: created.id });
  if (mpInfo.id !== created.id || !Array.isArray(mpInfo.media) || mpInfo.media.length !== 2) fail('info: bad mountpoint info');
  const codecs = mpInfo.media.map((m) => m.codec).sort().join(',');
  if (codecs !== 'opus,vp8') fail(`info: codecs ${codecs}`);
  step('mp-info', mpInfo);

  // Watch the demo clip, answered by a real WebRTC stack.
  const webrtcUp = new Promise((resolve) => handle.once(Janode.EVENT.HANDLE_WEBRTCUP, resolve));
  const started = new Promise((resolve) => handle.on(StreamingPlugin.EVENT.STREAMING_STATUS, (evt) => {
    if (evt.status === 'started') resolve(evt);
  }));
  const watched = await handle.watch({ id: 1 });
  if (watched.status !== 'preparing' || !watched.jsep || watched.jsep.type !== 'offer') fail('watch: no offer');
  step('watch', { status: watched.status, jsep_type: watched.jsep.type });

  const res = await fetch(answerURL, { method: 'POST', body: watched.jsep.sdp });
  if (!res.ok) fail(`answerer: HTTP ${res.status} ${await res.text()}`);
  const answer = await res.text();
  const start = await handle.start({ jsep: { type: 'answer', sdp: answer } });
  step('start', { status: start.status });

  await withTimeout(webrtcUp, 15000, 'webrtcup');
  step('webrtcup', {});
  const st = await withTimeout(started, 15000, 'started event');
  step('started', { status: st.status });

  // Let media flow for a moment; the Go side counts it.
  await new Promise((r) => setTimeout(r, 3000));

  const hangup = new Promise((resolve) => handle.once(Janode.EVENT.HANDLE_HANGUP, resolve));
  const stop = await handle.stop();
  step('stop', { status: stop.status });
  await withTimeout(hangup, 10000, 'hangup');
  step('hangup', {});

  const destroyed = await handle.destroyMountpoint({ id: created.id });
  if (destroyed.id !== created.id) fail(`destroy: id ${destroyed.id}`);
  step('destroy', destroyed);

  await handle.detach();
  await session.destroy();
  step('done', {});
} finally {
  await connection.close().catch(() => {});
}
