/*
 * Configuration from the environment, the global lock, failure messages
 * (ressl_emu_last_error) and the sticky error of the emulated context.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"

namespace emu {

Config g_config;
std::recursive_mutex g_mu;
CUresult g_sticky = CUDA_SUCCESS;

namespace {
std::string g_last_error;
std::string g_sticky_message;

bool parse_size(const char* text, size_t* out) {
  char* end = nullptr;
  unsigned long long v = strtoull(text, &end, 0);
  if (end == text) return false;
  if (*end == 'K' || *end == 'k') v <<= 10, ++end;
  else if (*end == 'M' || *end == 'm') v <<= 20, ++end;
  else if (*end == 'G' || *end == 'g') v <<= 30, ++end;
  if (*end == 'i' || *end == 'B') ++end;
  if (*end == 'B') ++end;
  if (*end != '\0') return false;
  *out = (size_t)v;
  return true;
}

void vrecord(CUresult code, bool loud, const char* fmt, va_list ap) {
  char buf[1024];
  vsnprintf(buf, sizeof buf, fmt, ap);
  const char* name = nullptr;
  cuGetErrorName(code, &name);
  g_last_error = std::string(name ? name : "CUDA_ERROR_?") + ": " + buf;
  if (loud || g_config.verbose) fprintf(stderr, "ressl-emu: %s\n", g_last_error.c_str());
}
}  // namespace

bool load_config(std::string* error) {
  Config c;
  if (const char* v = getenv("RESSL_EMU_DEVICES")) {
    char* end = nullptr;
    long n = strtol(v, &end, 10);
    if (end == v || *end || n < 0 || n > 1) {
      *error = std::string("RESSL_EMU_DEVICES='") + v + "' must be 0 (driver without a device) or 1";
      return false;
    }
    c.devices = (int)n;
  }
  if (const char* v = getenv("RESSL_EMU_DEVICE_MEMORY")) {
    if (!parse_size(v, &c.device_memory) || c.device_memory < (1u << 20)) {
      *error = std::string("RESSL_EMU_DEVICE_MEMORY='") + v +
               "' must be a size of at least 1 MiB (bytes, or with a K/M/G suffix)";
      return false;
    }
  }
  if (const char* v = getenv("RESSL_EMU_SYNC")) c.sync = strcmp(v, "1") == 0;
  if (const char* v = getenv("RESSL_EMU_VERBOSE")) c.verbose = strcmp(v, "1") == 0;
  if (const char* v = getenv("RESSL_EMU_ALLOC_FILL")) {
    char* end = nullptr;
    long b = strtol(v, &end, 0);
    if (strcmp(v, "none") == 0) c.alloc_fill = -1;
    else if (end != v && *end == '\0' && b >= 0 && b <= 255) c.alloc_fill = (int)b;
    else {
      *error = std::string("RESSL_EMU_ALLOC_FILL='") + v + "' must be a byte value or 'none'";
      return false;
    }
  }
  if (const char* v = getenv("RESSL_EMU_FAIL_ALLOC")) {
    std::string spec(v);
    size_t pos = 0;
    while (pos <= spec.size()) {
      size_t comma = spec.find(',', pos);
      std::string item = spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      size_t colon = item.find(':');
      std::string key = colon == std::string::npos ? "nth" : item.substr(0, colon);
      std::string val = colon == std::string::npos ? item : item.substr(colon + 1);
      size_t num = 0;
      bool ok = parse_size(val.c_str(), &num) && num > 0;
      if (ok && key == "nth") c.fail_nth = (long)num;
      else if (ok && key == "from") c.fail_from = (long)num;
      else if (ok && key == "above") c.fail_above = num;
      else {
        *error = "RESSL_EMU_FAIL_ALLOC='" + spec + "': '" + item +
                 "' is not one of nth:N, from:N, above:BYTES (comma-separated; N counts device "
                 "allocations from 1)";
        return false;
      }
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  g_config = c;
  return true;
}

CUresult fail(CUresult code, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vrecord(code, false, fmt, ap);
  va_end(ap);
  return code;
}

CUresult fail_loud(CUresult code, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vrecord(code, true, fmt, ap);
  va_end(ap);
  return code;
}

void set_sticky(CUresult code, const std::string& message) {
  if (g_sticky == CUDA_SUCCESS) {
    g_sticky = code;
    g_sticky_message = message;
  }
  fail_loud(code, "%s (sticky: the context is unusable from now on, as after a device fault)",
            message.c_str());
}

}  // namespace emu

/* The message of the emulator's most recent failure (which call, what was wrong); "" if none. */
EMU_EXPORT const char* ressl_emu_last_error(void) {
  emu::Lock lock(emu::g_mu);
  static thread_local std::string copy;
  copy = emu::g_last_error;
  return copy.c_str();
}
