// The microphone: getUserMedia -> AudioWorklet (capture-worklet.js) -> 16 kHz PCM16 chunks
// of 250 ms, handed to `onChunk(ArrayBuffer)`. See capture-worklet.js for why PCM.

export const CHUNK_MS = 250;
export const SAMPLE_RATE = 16000;

// Whisper does best on the plain signal: no echo cancelling or noise suppression (both
// smear distant speech; while Habla speaks, app.js sends silence in place of the captured
// chunks rather than relying on echo cancelling); automatic gain keeps a teacher across the
// room audible.
const CONSTRAINTS = {
  audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: true },
};

export class MicError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code; // insecure | unsupported | denied | missing | busy | failed
  }
}

/** Why the microphone cannot be used in this page, or "" when it can be tried. */
export function micUnavailable() {
  if (!window.isSecureContext) return "insecure";
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return "unsupported";
  if (typeof AudioWorkletNode === "undefined") return "unsupported";
  return "";
}

export class Microphone {
  /** @param {{onChunk: (pcm: ArrayBuffer) => void, onLevel?: (peak: number) => void, onEnded?: () => void, onMuted?: (muted: boolean) => void}} hooks */
  constructor(hooks) {
    this.hooks = hooks;
    this.stream = null;
    this.ctx = null;
    this.node = null;
    this.flushed = null;
  }

  async start() {
    const why = micUnavailable();
    if (why === "insecure") {
      throw new MicError(why, "The microphone only works on a secure page (https://, or http://localhost).");
    }
    if (why) throw new MicError(why, "This browser cannot record audio here (no getUserMedia or AudioWorklet).");
    try {
      this.stream = await navigator.mediaDevices.getUserMedia(CONSTRAINTS);
    } catch (e) {
      const name = e && e.name;
      if (name === "NotAllowedError" || name === "SecurityError") {
        throw new MicError("denied", "Microphone access was refused. Allow it in the browser's site settings.");
      }
      if (name === "NotFoundError" || name === "OverconstrainedError") {
        throw new MicError("missing", "No microphone was found.");
      }
      if (name === "NotReadableError") throw new MicError("busy", "Another app is using the microphone.");
      throw new MicError("failed", `The microphone could not start: ${(e && e.message) || e}`);
    }
    try {
      this.ctx = new AudioContext({ latencyHint: "interactive" });
      await this.ctx.audioWorklet.addModule(new URL("./capture-worklet.js", import.meta.url));
      const source = this.ctx.createMediaStreamSource(this.stream);
      this.node = new AudioWorkletNode(this.ctx, "habla-capture", {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions: { targetRate: SAMPLE_RATE, chunkMs: CHUNK_MS },
      });
      let done = () => {};
      this.flushed = new Promise((resolve) => {
        done = resolve;
      });
      this.node.port.onmessage = (e) => {
        if (e.data.pcm) {
          this.hooks.onChunk(e.data.pcm);
          if (this.hooks.onLevel) this.hooks.onLevel(e.data.peak);
        }
        if (e.data.done) done();
      };
      // the worklet must be pulled by the graph to run: through a muted gain to the output
      const mute = this.ctx.createGain();
      mute.gain.value = 0;
      source.connect(this.node).connect(mute).connect(this.ctx.destination);
      if (this.ctx.state === "suspended") await this.ctx.resume();
    } catch (e) {
      await this.stop();
      throw new MicError("failed", `Audio processing could not start: ${(e && e.message) || e}`);
    }
    for (const track of this.stream.getAudioTracks()) {
      track.addEventListener("ended", () => this.hooks.onEnded && this.hooks.onEnded());
      // the system took the mic for a while (a call, the app in the background on some phones)
      track.addEventListener("mute", () => this.hooks.onMuted && this.hooks.onMuted(true));
      track.addEventListener("unmute", () => this.hooks.onMuted && this.hooks.onMuted(false));
    }
  }

  /** Stop recording; the last partial chunk is handed over before this resolves. */
  async stop() {
    if (this.node) {
      this.node.port.postMessage("flush");
      await Promise.race([this.flushed, new Promise((resolve) => setTimeout(resolve, 500))]);
      this.node.port.onmessage = null;
      this.node.disconnect();
      this.node = null;
    }
    if (this.stream) {
      for (const track of this.stream.getTracks()) track.stop();
      this.stream = null;
    }
    if (this.ctx) {
      await this.ctx.close().catch(() => {});
      this.ctx = null;
    }
  }
}
