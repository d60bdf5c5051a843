// Makes smart-whisper 0.8.1 copy each new segment on the worker thread.
//
// The binding's progress callback sends only a segment index to the main thread. The main thread
// then reads that segment from the whisper state while whisper_full may still be appending
// segments to the same vector on the worker thread, a data race that can read freed memory.
// These edits copy each new segment inside whisper.cpp's callback, on the worker thread where
// the state is consistent, and build the JavaScript objects from the copy.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const MARKER = "// earshot: segment snapshots";

const snapshotType = `${MARKER}
struct SegmentSnapshot {
    int64_t t0 = 0;
    int64_t t1 = 0;
    std::string text;
    std::string lang;
    std::vector<std::string> token_texts;
    std::vector<whisper_token> token_ids;
    std::vector<float> token_probabilities;
};

static SegmentSnapshot snapshot_segment(whisper_context* ctx, whisper_state* state, int i) {
    SegmentSnapshot segment;
    segment.t0 = whisper_full_get_segment_t0_from_state(state, i);
    segment.t1 = whisper_full_get_segment_t1_from_state(state, i);
    segment.text = whisper_full_get_segment_text_from_state(state, i);
    segment.lang = whisper_lang_str(whisper_full_lang_id_from_state(state));
    const int n_tokens = whisper_full_n_tokens_from_state(state, i);
    for (int j = 0; j < n_tokens; j++) {
        const whisper_token_data token = whisper_full_get_token_data_from_state(state, i, j);
        segment.token_texts.push_back(whisper_full_get_token_text_from_state(ctx, state, i, j));
        segment.token_ids.push_back(token.id);
        segment.token_probabilities.push_back(token.p);
    }
    return segment;
}

class TranscribeWorker : public Napi::AsyncProgressQueueWorker<SegmentSnapshot> {`;

const originalCallback = `            const ExecutionProgress& progress = *(ExecutionProgress*)user_data;

            const int i = whisper_full_n_segments_from_state(state) - 1;
            progress.Send(&i, 1);`;

const snapshotCallback = `            const ExecutionProgress& progress = *(ExecutionProgress*)user_data;

            const int n_segments = whisper_full_n_segments_from_state(state);
            for (int i = n_segments - n_new; i < n_segments; i++) {
                const SegmentSnapshot segment = snapshot_segment(ctx, state, i);
                progress.Send(&segment, 1);
            }`;

const snapshotOnProgress = `    void OnProgress(const SegmentSnapshot* data, size_t count) override {
        Napi::HandleScope scope(Env());

        if (this->progress_callback.IsEmpty()) {
            return;
        }

        const whisper_token eot = whisper_token_eot(context);
        const bool detail = strcmp(smart_params.format, "detail") == 0;
        for (size_t k = 0; k < count; k++) {
            const SegmentSnapshot& snapshot = data[k];
            Napi::Object segment = Napi::Object::New(Env());
            segment.Set("from", Napi::Number::New(Env(), snapshot.t0 * 10));
            segment.Set("to", Napi::Number::New(Env(), snapshot.t1 * 10));
            segment.Set("text", Napi::String::New(Env(), snapshot.text));

            if (detail) {
                const size_t n_tokens = snapshot.token_ids.size();
                Napi::Array tokens = Napi::Array::New(Env(), n_tokens);
                float sum = 0, min_p = 1, max_p = 0;
                size_t text_tokens = 0;
                for (size_t j = 0; j < n_tokens; j++) {
                    Napi::Object token = Napi::Object::New(Env());
                    token.Set("text", Napi::String::New(Env(), snapshot.token_texts[j]));
                    token.Set("id", Napi::Number::New(Env(), snapshot.token_ids[j]));
                    token.Set("p", Napi::Number::New(Env(), snapshot.token_probabilities[j]));
                    tokens.Set(j, token);
                    if (snapshot.token_ids[j] > eot) continue;
                    const float p = snapshot.token_probabilities[j];
                    sum += p;
                    min_p = std::min(min_p, p);
                    max_p = std::max(max_p, p);
                    text_tokens++;
                }
                float confidence = 0;
                if (text_tokens > 2) {
                    confidence = (sum - min_p - max_p) / (text_tokens - 2);
                } else if (text_tokens > 0) {
                    confidence = sum / text_tokens;
                }
                segment.Set("lang", Napi::String::New(Env(), snapshot.lang));
                segment.Set("confidence", Napi::Number::New(Env(), confidence));
                segment.Set("tokens", tokens);
            }

            this->progress_callback.Call({segment});
        }
    }

`;

/** Applies the edits to the package's transcribe.cc once; throws if the source is not 0.8.1's. */
export function patchSegmentSnapshots(packageDir) {
  const file = path.join(packageDir, "src/binding/transcribe.cc");
  let source = readFileSync(file, "utf8");
  if (source.includes(MARKER)) return false;

  const classLine = "class TranscribeWorker : public Napi::AsyncProgressQueueWorker<int> {";
  const onProgressStart = source.indexOf("    void OnProgress(const int* data, size_t _count) override {");
  const onOkStart = source.indexOf("    void OnOK() override {");
  if (!source.includes(classLine) || !source.includes(originalCallback) || onProgressStart < 0 ||
      onOkStart < onProgressStart) {
    throw new Error(`${file} is not smart-whisper 0.8.1's: the segment snapshot edits do not apply`);
  }

  source = source.slice(0, onProgressStart) + snapshotOnProgress + source.slice(onOkStart);
  source = source.replace(classLine, snapshotType).replace(originalCallback, snapshotCallback);
  writeFileSync(file, source);
  return true;
}
