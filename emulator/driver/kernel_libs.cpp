/* Discovery and loading of host kernel libraries (see kernel_libs.h). */
#include "kernel_libs.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>

namespace emu {
namespace {

std::set<std::string> g_loaded;                          // library paths already opened
std::multimap<std::string, HostKernel> g_by_symbol;      // symbol -> host build
std::string g_problems;                                  // libraries that could not be used

std::string self_dir() {
  Dl_info info;
  if (dladdr((void*)&self_dir, &info) && info.dli_fname) {
    std::string p = info.dli_fname;
    size_t slash = p.rfind('/');
    return slash == std::string::npos ? "." : p.substr(0, slash);
  }
  return ".";
}

std::vector<std::string> library_files() {
  std::vector<std::string> files;
  std::string path = kernel_search_path();
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t colon = path.find(':', pos);
    std::string entry = path.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    struct stat st;
    if (!entry.empty() && stat(entry.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) {
        std::vector<std::string> in_dir;
        if (DIR* d = opendir(entry.c_str())) {
          while (dirent* e = readdir(d)) {
            std::string n = e->d_name;
            if (n.size() > 3 && n.compare(n.size() - 3, 3, ".so") == 0) in_dir.push_back(entry + "/" + n);
          }
          closedir(d);
        }
        std::sort(in_dir.begin(), in_dir.end());
        files.insert(files.end(), in_dir.begin(), in_dir.end());
      } else {
        files.push_back(entry);
      }
    }
    if (colon == std::string::npos) break;
    pos = colon + 1;
  }
  return files;
}

void load(const std::string& file) {
  std::string* warnings = &g_problems;
  g_loaded.insert(file);
  void* h = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    *warnings += "\n  cannot load " + file + ": " + dlerror();
    return;
  }
  auto table_fn = (ressl_emu_module_table_fn)dlsym(h, "ressl_emu_module_table");
  if (!table_fn) {
    *warnings += "\n  " + file + " is not a host kernel library (no ressl_emu_module_table)";
    return;
  }
  const ressl_emu_module_info* t = table_fn();
  if (t->abi_version != RESSL_EMU_ABI_VERSION) {
    *warnings += "\n  " + file + " was built for emulator ABI " + std::to_string(t->abi_version) +
                 ", this driver speaks " + std::to_string(RESSL_EMU_ABI_VERSION) +
                 " (run emulator/build.sh)";
    return;
  }
  for (unsigned i = 0; i < t->num_kernels; ++i) {
    const ressl_emu_kernel* k = &t->kernels[i];
    Dl_info info;
    std::string symbol = dladdr(k->address, &info) && info.dli_sname ? info.dli_sname : k->source_name;
    g_by_symbol.emplace(symbol, HostKernel{k, symbol, file, t->source_path ? t->source_path : "?"});
  }
}

}  // namespace

std::string kernel_search_path() {
  const char* env = getenv("RESSL_EMU_KERNEL_PATH");
  return env && *env ? std::string(env) : self_dir() + "/kernels";
}

std::vector<const HostKernel*> find_host_kernels(const std::string& symbol, std::string* warnings) {
  for (const std::string& f : library_files())
    if (!g_loaded.count(f)) load(f);
  *warnings = g_problems;
  std::vector<const HostKernel*> out;
  auto range = g_by_symbol.equal_range(symbol);
  for (auto it = range.first; it != range.second; ++it) out.push_back(&it->second);
  std::sort(out.begin(), out.end(),
            [](const HostKernel* a, const HostKernel* b) { return a->library < b->library; });
  return out;
}

}  // namespace emu
