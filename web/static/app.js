// Spillway demo page: a Janus client for janus.plugin.streaming in plain JS.
//
// Flow: create a session -> long poll it for events -> attach the streaming
// plugin -> "list" the mountpoints -> "watch" one -> the offer arrives as an
// event -> answer it and send "start" -> trickle our candidates -> play.
// The Janus API is at the same origin ("/janus") unless ?server= says
// otherwise. A headless browser reads window.spillwayState and
// window.spillwayStats.
'use strict';

(() => {
  const params = new URLSearchParams(location.search);
  const server = (params.get('server') || '/janus').replace(/\/+$/, '');
  const KEEPALIVE_MS = 25000; // Janus drops sessions after 60 s of silence
  const STATS_MS = 1000;
  const LOG_LINES = 200;

  const $ = (id) => document.getElementById(id);
  const video = $('video');

  let sessionId = null;
  let handleId = null;
  let pc = null;
  let watching = null; // the mountpoint id being watched, or null
  let keepaliveTimer = null;
  let prevSample = null; // last getStats sample, for bitrates
  let stopsPending = 0; // "stopping" events still due for stops we sent
  let events = Promise.resolve(); // handles events one at a time, in order

  window.spillwayState = 'idle';
  window.spillwayStats = {};

  class JanusError extends Error {
    constructor(code, reason) {
      super(`Janus error ${code}: ${reason}`);
      this.code = code;
      this.reason = reason;
    }
  }

  // ---- page state and log ------------------------------------------------

  function setState(s) {
    window.spillwayState = s;
    const el = $('status');
    el.textContent = s;
    el.className = 'status ' + s.split(':')[0];
  }

  function log(text, isError) {
    const li = document.createElement('li');
    if (isError) li.className = 'error';
    const t = document.createElement('span');
    t.className = 'time';
    t.textContent = new Date().toLocaleTimeString();
    li.append(t, text);
    const list = $('log');
    list.prepend(li);
    while (list.children.length > LOG_LINES) list.lastChild.remove();
  }

  function fail(err) {
    const text = err instanceof JanusError ? `${err.code} ${err.reason}` : (err && err.message) || String(err);
    log(text, true);
    setState('error: ' + text);
  }

  // ---- Janus API over HTTP ------------------------------------------------

  function transaction() {
    const b = new Uint8Array(9);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  // api POSTs one request and returns the reply; a Janus error throws.
  async function api(path, body) {
    body.transaction = transaction();
    const res = await fetch(server + path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    let msg;
    try {
      msg = await res.json();
    } catch (e) {
      throw new Error(`HTTP ${res.status} from ${server + path}: not JSON`);
    }
    if (msg.janus === 'error') {
      const e = msg.error || {};
      throw new JanusError(e.code, e.reason);
    }
    if (!res.ok) throw new Error(`HTTP ${res.status} from ${server + path}`);
    return msg;
  }

  // message sends a request to the streaming plugin. A sync reply returns
  // its plugin data; an "ack" returns null (the answer comes as an event).
  async function message(body, jsep) {
    if (sessionId === null || handleId === null) throw new Error('not connected to the server');
    const req = { janus: 'message', body };
    if (jsep) req.jsep = jsep;
    const reply = await api(`/${sessionId}/${handleId}`, req);
    if (reply.janus !== 'success') return null;
    const data = (reply.plugindata && reply.plugindata.data) || {};
    if (data.error_code) throw new JanusError(data.error_code, data.error);
    return data;
  }

  async function connect() {
    const created = await api('', { janus: 'create' });
    sessionId = created.data.id;
    log(`session ${sessionId}`);
    poll(sessionId);
    clearInterval(keepaliveTimer);
    keepaliveTimer = setInterval(keepalive, KEEPALIVE_MS);
    const attached = await api(`/${sessionId}`, { janus: 'attach', plugin: 'janus.plugin.streaming' });
    handleId = attached.data.id;
    log(`attached janus.plugin.streaming, handle ${handleId}`);
  }

  async function keepalive() {
    if (sessionId === null) return;
    try {
      await api(`/${sessionId}`, { janus: 'keepalive' });
    } catch (e) {
      log('keepalive: ' + e.message, true);
    }
  }

  // poll long-polls the session until it ends; each GET returns one event
  // or an array of up to maxev events, or a keepalive after ~30 s.
  async function poll(sid) {
    let failures = 0;
    while (sessionId === sid) {
      let body;
      try {
        const res = await fetch(`${server}/${sid}?rid=${Date.now()}&maxev=10`, { cache: 'no-store' });
        body = await res.json();
        failures = 0;
      } catch (e) {
        if (sessionId !== sid) return;
        if (++failures >= 5) {
          lostSession(`lost the server: ${e.message}`);
          return;
        }
        log(`long poll: ${e.message}, retrying`, true);
        await new Promise((r) => setTimeout(r, 500 * failures));
        continue;
      }
      if (sessionId !== sid) return;
      for (const ev of Array.isArray(body) ? body : [body]) {
        if (ev.janus === 'error') {
          const e = ev.error || {};
          lostSession(`${e.code} ${e.reason}`);
          return;
        }
        events = events.then(() => onEvent(ev)).catch(fail);
      }
    }
  }

  function lostSession(why) {
    sessionId = null;
    handleId = null;
    watching = null;
    closePeer();
    clearInterval(keepaliveTimer);
    fail(new Error(why));
    $('mountpoints').tBodies[0].replaceChildren(row([cell('session lost: press Refresh', 'muted', 6)]));
  }

  // ---- events --------------------------------------------------------------

  async function onEvent(ev) {
    switch (ev.janus) {
      case 'keepalive':
        return;
      case 'event':
        return onPluginEvent(ev);
      case 'webrtcup':
        log('webrtcup: the PeerConnection is up');
        return;
      case 'media':
        log(`media: ${ev.mid ? ev.mid + ' ' : ''}${ev.type} ${ev.receiving ? 'flowing' : 'stopped'}`);
        return;
      case 'slowlink':
        log(`slowlink: ${ev.mid ? ev.mid + ' ' : ''}${ev.media || ''} ${ev.uplink ? 'uplink' : 'downlink'}, ${ev.lost} lost`, true);
        return;
      case 'hangup':
        log(`hangup: ${ev.reason || ''}`);
        // Without a PeerConnection it is the late hangup of one we closed.
        if (!pc) return;
        closePeer();
        watching = null;
        setState('idle');
        return;
      case 'trickle':
        if (pc && ev.candidate) {
          await pc.addIceCandidate(ev.candidate.completed ? null : ev.candidate);
        }
        return;
      case 'detached':
        handleId = null;
        lostSession('the plugin handle was detached');
        return;
      case 'timeout':
        lostSession('the session timed out');
        return;
      default:
        log(`event ${ev.janus}`);
    }
  }

  async function onPluginEvent(ev) {
    const data = (ev.plugindata && ev.plugindata.data) || {};
    if (data.error_code) {
      if (watching !== null && !pc) watching = null; // the watch failed
      throw new JanusError(data.error_code, data.error);
    }
    const status = data.result && data.result.status;
    if (status) log(`streaming: ${status}`);
    if (status === 'preparing') stopsPending = 0; // a new watch: older stops are settled
    if (ev.jsep && ev.jsep.type === 'offer') {
      await answer(ev.jsep);
    }
    if (status === 'stopping' || status === 'stopped') {
      if (stopsPending > 0) {
        stopsPending--; // the echo of our own stop, maybe after a new watch
        return;
      }
      closePeer();
      watching = null;
      setState('idle');
    }
  }

  // ---- WebRTC --------------------------------------------------------------

  function newPeer() {
    const p = new RTCPeerConnection({ iceServers: [] });
    const stream = new MediaStream();
    p.ontrack = (e) => {
      stream.addTrack(e.track);
      video.srcObject = stream;
      $('unmute').disabled = false;
      video.play().catch(() => {}); // muted autoplay; a refusal is not an error
      log(`track: ${e.track.kind} (mid ${e.transceiver ? e.transceiver.mid : '?'})`);
    };
    p.onicecandidate = (e) => {
      if (e.candidate && !e.candidate.candidate) return; // an end-of-candidates marker per m-line
      trickle(e.candidate);
    };
    p.oniceconnectionstatechange = () => {
      log(`ICE ${p.iceConnectionState}`);
      if (p === pc && p.iceConnectionState === 'failed') fail(new Error('ICE failed'));
    };
    p.onconnectionstatechange = () => {
      if (p === pc && p.connectionState === 'failed') fail(new Error('connection failed (DTLS or ICE)'));
    };
    return p;
  }

  async function trickle(c) {
    const candidate = c ? { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex } : { completed: true };
    try {
      await api(`/${sessionId}/${handleId}`, { janus: 'trickle', candidate });
    } catch (e) {
      log('trickle: ' + e.message, true);
    }
  }

  async function answer(offer) {
    if (watching === null) {
      log('offer while not watching: ignored', true);
      return;
    }
    if (!pc) pc = newPeer();
    await pc.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
    const ans = await pc.createAnswer();
    await pc.setLocalDescription(ans);
    await message({ request: 'start' }, { type: ans.type, sdp: ans.sdp });
    log('answer sent, start requested');
  }

  function closePeer() {
    if (pc) {
      pc.close();
      pc = null;
    }
    video.srcObject = null;
    prevSample = null;
    $('stop').disabled = true;
    $('unmute').disabled = true;
    $('unmute').textContent = 'Unmute';
    video.muted = true;
    $('now-watching').textContent = '';
  }

  // ---- actions ---------------------------------------------------------------

  async function watch(id) {
    try {
      if (watching !== null || pc) await stop();
      watching = id;
      setState('watching');
      $('now-watching').textContent = `mountpoint ${id}`;
      $('stop').disabled = false;
      await message({ request: 'watch', id });
      log(`watch ${id} requested`);
    } catch (e) {
      watching = null;
      closePeer();
      fail(e);
    }
  }

  async function stop() {
    const was = watching;
    watching = null;
    closePeer();
    setState('idle');
    if (was === null || handleId === null) return;
    try {
      stopsPending++;
      await message({ request: 'stop' });
      log(`stop ${was} requested`);
    } catch (e) {
      fail(e);
    }
  }

  async function refresh() {
    try {
      if (sessionId === null) await connect();
      const data = await message({ request: 'list' });
      renderList((data && data.list) || []);
      if (watching === null) setState('idle'); // clears an older error
    } catch (e) {
      fail(e);
    }
  }

  // ---- rendering -------------------------------------------------------------

  function cell(content, cls, span) {
    const td = document.createElement('td');
    if (cls) td.className = cls;
    if (span) td.colSpan = span;
    td.append(content);
    return td;
  }

  function row(cells) {
    const tr = document.createElement('tr');
    tr.append(...cells);
    return tr;
  }

  function mediaText(m) {
    if (!Array.isArray(m.media) || m.media.length === 0) return '–';
    return m.media.map((x) => `${x.mid || '?'}: ${x.type || '?'}${x.codec ? ' ' + x.codec : ''}`).join(', ');
  }

  function renderList(list) {
    const body = $('mountpoints').tBodies[0];
    if (list.length === 0) {
      body.replaceChildren(row([cell('no mountpoints', 'muted', 6)]));
      return;
    }
    body.replaceChildren(...list.map((m) => {
      const enabled = m.enabled !== false;
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.id = `watch-${m.id}`;
      btn.textContent = 'Watch';
      btn.disabled = !enabled;
      btn.addEventListener('click', () => watch(m.id));
      const en = document.createElement('span');
      en.className = enabled ? 'yes' : 'no';
      en.textContent = enabled ? 'yes' : 'no';
      return row([
        cell(String(m.id)),
        cell(m.description || ''),
        cell(m.type || ''),
        cell(en),
        cell(mediaText(m), 'media'),
        cell(btn),
      ]);
    }));
    log(`${list.length} mountpoint(s)`);
  }

  // ---- stats -----------------------------------------------------------------

  function kbps(bits) {
    return bits >= 1e6 ? `${(bits / 1e6).toFixed(2)} Mbit/s` : `${Math.round(bits / 1e3)} kbit/s`;
  }

  async function sampleStats() {
    const p = pc;
    if (!p) return;
    let reports;
    try {
      reports = await p.getStats();
    } catch (e) {
      return; // closed meanwhile
    }
    if (p !== pc) return;
    let v = null;
    let a = null;
    let transport = null;
    reports.forEach((r) => {
      const kind = r.kind || r.mediaType;
      if (r.type === 'inbound-rtp' && kind === 'video') v = r;
      else if (r.type === 'inbound-rtp' && kind === 'audio') a = r;
      else if (r.type === 'transport') transport = r;
    });
    const now = { t: performance.now(), vBytes: v ? v.bytesReceived || 0 : 0, aBytes: a ? a.bytesReceived || 0 : 0 };
    const secs = prevSample ? (now.t - prevSample.t) / 1000 : 0;
    const rate = (cur, old) => (secs > 0 ? Math.max(0, ((cur - old) * 8) / secs) : 0);
    const s = {
      bitrate: prevSample ? Math.round(rate(now.vBytes, prevSample.vBytes)) : 0,
      audioBitrate: prevSample ? Math.round(rate(now.aBytes, prevSample.aBytes)) : 0,
      framesDecoded: (v && v.framesDecoded) || 0,
      keyFramesDecoded: (v && v.keyFramesDecoded) || 0,
      framesPerSecond: (v && v.framesPerSecond) || 0,
      frameWidth: (v && v.frameWidth) || 0,
      frameHeight: (v && v.frameHeight) || 0,
      packetsReceived: (v && v.packetsReceived) || 0,
      packetsLost: (v && v.packetsLost) || 0,
      jitter: (v && v.jitter) || 0,
      audioPacketsReceived: (a && a.packetsReceived) || 0,
      audioPacketsLost: (a && a.packetsLost) || 0,
      iceState: p.iceConnectionState,
      dtlsState: (transport && transport.dtlsState) || '',
      srtpCipher: (transport && transport.srtpCipher) || '',
      dtlsCipher: (transport && transport.dtlsCipher) || '',
      mountpoint: watching,
      time: Date.now(),
    };
    prevSample = now;
    window.spillwayStats = s;
    if (watching !== null && window.spillwayState === 'watching' && s.framesDecoded > 0) setState('playing');
    renderStats(s);
  }

  function renderStats(s) {
    $('stat-bitrate').textContent = kbps(s.bitrate);
    $('stat-framesDecoded').textContent = String(s.framesDecoded);
    $('stat-framesPerSecond').textContent = String(s.framesPerSecond);
    $('stat-resolution').textContent = s.frameWidth ? `${s.frameWidth} x ${s.frameHeight}` : '–';
    $('stat-packetsLost').textContent = `${s.packetsLost} video, ${s.audioPacketsLost} audio`;
    $('stat-jitter').textContent = `${(s.jitter * 1000).toFixed(1)} ms`;
    $('stat-audioBitrate').textContent = kbps(s.audioBitrate);
    $('stat-iceState').textContent = s.iceState;
    $('stat-srtpCipher').textContent = s.srtpCipher || '–';
  }

  // ---- wiring ----------------------------------------------------------------

  $('server').textContent = server;
  $('refresh').addEventListener('click', refresh);
  $('stop').addEventListener('click', stop);
  $('unmute').addEventListener('click', () => {
    video.muted = !video.muted;
    $('unmute').textContent = video.muted ? 'Unmute' : 'Mute';
  });
  setInterval(sampleStats, STATS_MS);
  window.addEventListener('pagehide', () => {
    if (sessionId === null) return;
    // keepalive lets the request outlive the page.
    fetch(`${server}/${sessionId}`, {
      method: 'POST',
      keepalive: true,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ janus: 'destroy', transaction: transaction() }),
    }).catch(() => {});
    sessionId = null;
  });

  refresh();
})();
