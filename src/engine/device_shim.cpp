// rollama's C++ shim for what llama.cpp says about where a model went while it loads.
//
// llama.cpp reports each buffer it allocates ("Vulkan0 model buffer size = 93.19 MiB", "CPU
// KV buffer size", "compute buffer size") and the layers it offloaded ("offloaded 31/31 layers
// to GPU") in its log, at load and context creation only; llama-cpp-2 exposes neither the
// context's memory breakdown nor its raw pointer. Ollama reads the same lines from
// llama-server's output. This shim owns llama.cpp's (and ggml's) log callback: while a
// capture is on, lines are kept for the engine to read; otherwise they are dropped, or
// written to stderr when the engine log is on.

#include "llama.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace {

std::mutex log_mutex;
std::string captured;
bool capturing = false;
bool echo = false;

void on_log(ggml_log_level level, const char * text, void *) {
    (void) level;
    if (text == nullptr) {
        return;
    }
    std::lock_guard<std::mutex> lock(log_mutex);
    if (capturing) {
        captured += text;
    }
    if (echo) {
        std::fputs(text, stderr);
    }
}

}  // namespace

extern "C" {

// Makes this shim llama.cpp's log callback; `to_stderr`: also write every line to stderr.
void rollama_log_install(bool to_stderr) {
    {
        std::lock_guard<std::mutex> lock(log_mutex);
        echo = to_stderr;
    }
    llama_log_set(on_log, nullptr);
}

// Starts keeping log lines (dropping any kept before).
void rollama_log_capture_start(void) {
    std::lock_guard<std::mutex> lock(log_mutex);
    captured.clear();
    capturing = true;
}

// Stops keeping lines and returns those kept since the start (free with std::free).
char * rollama_log_capture_take(void) {
    std::lock_guard<std::mutex> lock(log_mutex);
    capturing = false;
    char * out = static_cast<char *>(std::malloc(captured.size() + 1));
    if (out != nullptr) {
        std::memcpy(out, captured.c_str(), captured.size() + 1);
    }
    captured.clear();
    return out;
}

}
