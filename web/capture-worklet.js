// AudioWorklet: the microphone, mono, down-sampled to 16 kHz PCM16 little-endian, posted to
// the page in chunks of exactly `chunkMs` (250 ms = 4000 samples = 8000 bytes).
//
// Why raw PCM and not MediaRecorder's WebM/Opus: every chunk stands on its own (a WebM
// chunk is a slice of one stream and cannot be cut, kept and resent by itself), so the
// phone can hold chunks while the connection is down and resend them by index; there is
// no encoder delay; and 256 kbit/s is nothing on a home network or VPN.
//
// Resampling: a windowed-sinc low-pass (cut-off just under 8 kHz) at the device rate,
// then linear interpolation at the 16 kHz output instants.

const TAPS = 31;

function lowPass(inputRate, cutoff) {
  const fc = cutoff / inputRate;
  const mid = (TAPS - 1) / 2;
  const h = new Float32Array(TAPS);
  let sum = 0;
  for (let j = 0; j < TAPS; j++) {
    const x = j - mid;
    const sinc = x === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * x) / (Math.PI * x);
    const blackman = 0.42 - 0.5 * Math.cos((2 * Math.PI * j) / (TAPS - 1)) + 0.08 * Math.cos((4 * Math.PI * j) / (TAPS - 1));
    h[j] = sinc * blackman;
    sum += h[j];
  }
  for (let j = 0; j < TAPS; j++) h[j] /= sum;
  return h;
}

class HablaCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.targetRate = opts.targetRate || 16000;
    this.step = sampleRate / this.targetRate; // input samples per output sample (3 at 48 kHz)
    this.filter = this.step > 1 ? lowPass(sampleRate, this.targetRate * 0.47) : null;
    this.ring = new Float32Array(TAPS);
    this.ringAt = 0;
    this.n = 0; // input samples seen
    this.prev = 0; // filtered value of input sample n-2 (the one before the last)
    this.last = 0; // filtered value of input sample n-1
    this.nextAt = 0; // input position of the next output sample
    this.size = Math.round((this.targetRate * (opts.chunkMs || 250)) / 1000);
    this.out = new DataView(new ArrayBuffer(this.size * 2));
    this.fill = 0;
    this.peak = 0;
    this.running = true;
    this.port.onmessage = (e) => {
      if (e.data === "flush") {
        this.post(true);
        this.running = false;
      }
    };
  }

  filtered(x) {
    if (!this.filter) return x;
    this.ring[this.ringAt] = x;
    let acc = 0;
    let k = this.ringAt;
    for (let j = 0; j < TAPS; j++) {
      acc += this.filter[j] * this.ring[k];
      k = k === 0 ? TAPS - 1 : k - 1;
    }
    this.ringAt = this.ringAt === TAPS - 1 ? 0 : this.ringAt + 1;
    return acc;
  }

  emit(v) {
    const s = v > 1 ? 1 : v < -1 ? -1 : v;
    this.out.setInt16(this.fill * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    const a = s < 0 ? -s : s;
    if (a > this.peak) this.peak = a;
    this.fill++;
    if (this.fill === this.size) this.post(false);
  }

  post(last) {
    if (this.fill > 0) {
      const pcm = this.out.buffer.slice(0, this.fill * 2);
      this.port.postMessage({ pcm, peak: this.peak }, [pcm]);
    }
    if (last) this.port.postMessage({ done: true });
    this.fill = 0;
    this.peak = 0;
  }

  process(inputs) {
    if (!this.running) return false;
    const input = inputs[0];
    if (!input || input.length === 0) return true; // no input connected right now
    const channels = input.length;
    const frames = input[0].length;
    for (let i = 0; i < frames; i++) {
      let x = 0;
      for (let ch = 0; ch < channels; ch++) x += input[ch][i];
      x /= channels;
      this.prev = this.last;
      this.last = this.filtered(x);
      this.n++;
      // output instants between input samples n-2 and n-1
      while (this.nextAt <= this.n - 1) {
        const frac = this.nextAt - (this.n - 2);
        this.emit(frac >= 0 ? this.prev + (this.last - this.prev) * frac : this.last);
        this.nextAt += this.step;
      }
    }
    return true;
  }
}

registerProcessor("habla-capture", HablaCapture);
