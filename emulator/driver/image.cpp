/*
 * Module image parsing (see image.h). Formats, as nvcc 13 writes them:
 * - fatbin: a 16-byte header (magic 0xBA55ED50, version 1, header size, payload size) followed by
 *   entries, each a header (kind 1 = PTX, 2 = ELF; arch at +28; flags at +40, 0x2000 = LZ4 and
 *   0x8000 = zstd compressed; compressed size at +16 and uncompressed size at +56) and its payload;
 * - cubin: ELF64, e_machine EM_CUDA (190), the SM in e_flags (bits 8-15 from ELF ABI version 8
 *   on); kernels are FUNC symbols with STO_CUDA_ENTRY (0x10) in st_other; per-kernel attributes
 *   in .nv.info.<name>: records of (format, attribute[, size], value), EIATTR_KPARAM_INFO (0x17)
 *   giving ordinal, offset and size (bits 18+) of each parameter, EIATTR_MAX_THREADS (0x05);
 *   static shared memory is the size of .nv.shared.<name>.
 * Compressed payloads are inflated with the system's libzstd.so.1 / liblz4.so.1 (dlopen'd).
 */
#include "image.h"

#include <dlfcn.h>
#include <elf.h>
#include <string.h>

#include <map>

namespace emu {
namespace {

constexpr uint32_t kFatbinMagic = 0xBA55ED50u;
constexpr uint16_t kEmCuda = 190;
constexpr uint64_t kFlagLz4 = 0x2000, kFlagZstd = 0x8000;

template <typename T>
T rd(const unsigned char* p) {
  T v;
  memcpy(&v, p, sizeof v);
  return v;
}

bool inflate(const unsigned char* in, size_t in_size, uint64_t flags, size_t out_size,
             std::vector<unsigned char>* out, std::string* why) {
  out->resize(out_size);
  if (flags & kFlagZstd) {
    void* lib = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
    auto dec = lib ? (size_t(*)(void*, size_t, const void*, size_t))dlsym(lib, "ZSTD_decompress")
                   : nullptr;
    auto err = lib ? (unsigned (*)(size_t))dlsym(lib, "ZSTD_isError") : nullptr;
    if (!dec || !err) {
      *why = "the image is zstd-compressed and libzstd.so.1 cannot be loaded";
      return false;
    }
    size_t n = dec(out->data(), out_size, in, in_size);
    if (err(n) || n != out_size) {
      *why = "zstd decompression of a fatbin entry failed";
      return false;
    }
    return true;
  }
  void* lib = dlopen("liblz4.so.1", RTLD_NOW | RTLD_LOCAL);
  auto dec = lib ? (int (*)(const char*, char*, int, int))dlsym(lib, "LZ4_decompress_safe") : nullptr;
  if (!dec) {
    *why = "the image is LZ4-compressed and liblz4.so.1 cannot be loaded";
    return false;
  }
  int n = dec((const char*)in, (char*)out->data(), (int)in_size, (int)out_size);
  if (n < 0 || (size_t)n != out_size) {
    *why = "LZ4 decompression of a fatbin entry failed";
    return false;
  }
  return true;
}

/* ---- ELF cubin ----------------------------------------------------------------------------- */

bool parse_nv_info(const unsigned char* p, size_t n, ImageKernel* k) {
  std::map<unsigned, ImageParam> params;
  size_t i = 0;
  while (i + 4 <= n) {
    unsigned format = p[i], attr = p[i + 1];
    size_t value_size = 0;
    const unsigned char* value = p + i + 2;
    if (format == 0x04) {  // EIFMT_SVAL: u16 size, then the bytes
      value_size = rd<uint16_t>(p + i + 2);
      value = p + i + 4;
      if (i + 4 + value_size > n) return false;
      i += 4 + value_size;
    } else {
      i += 4;  // EIFMT_NVAL / BVAL / HVAL: one 4-byte record
    }
    if (attr == 0x17 && value_size >= 12) {  // EIATTR_KPARAM_INFO
      unsigned ordinal = rd<uint16_t>(value + 4);
      unsigned offset = rd<uint16_t>(value + 6);
      unsigned size = (rd<uint32_t>(value + 8) >> 18) & 0x3FFF;
      params[ordinal] = ImageParam{offset, size};
    } else if (attr == 0x05 && value_size >= 12) {  // EIATTR_MAX_THREADS
      k->max_threads = rd<uint32_t>(value) * rd<uint32_t>(value + 4) * rd<uint32_t>(value + 8);
    } else if (attr == 0x19 && format == 0x03) {  // EIATTR_PARAM_CBANK_SIZE
      k->param_bytes = rd<uint16_t>(value);
    }
  }
  for (unsigned o = 0; o < params.size(); ++o) {
    if (!params.count(o)) return false;
    k->params.push_back(params[o]);
  }
  k->has_layout = true;
  return true;
}

CUresult parse_cubin(const unsigned char* d, size_t size, int sm, Image* out, std::string* why) {
  if (size < sizeof(Elf64_Ehdr) || memcmp(d, ELFMAG, SELFMAG) != 0 || d[EI_CLASS] != ELFCLASS64 ||
      d[EI_DATA] != ELFDATA2LSB) {
    *why = "not a 64-bit little-endian ELF image";
    return CUDA_ERROR_INVALID_IMAGE;
  }
  Elf64_Ehdr eh = rd<Elf64_Ehdr>(d);
  if (eh.e_machine != kEmCuda) {
    *why = "ELF image is not for a CUDA device (e_machine " + std::to_string(eh.e_machine) + ")";
    return CUDA_ERROR_INVALID_IMAGE;
  }
  int image_sm = d[EI_ABIVERSION] >= 8 ? (int)((eh.e_flags >> 8) & 0xFF) : (int)(eh.e_flags & 0xFF);
  if (image_sm / 10 != sm / 10 || image_sm > sm) {
    *why = "the cubin is for sm_" + std::to_string(image_sm) + ", the device is sm_" +
           std::to_string(sm) + " (SASS runs only within one major version, on a newer minor)";
    return CUDA_ERROR_NO_BINARY_FOR_GPU;
  }
  if (eh.e_shoff == 0 || eh.e_shentsize != sizeof(Elf64_Shdr) ||
      eh.e_shoff + (size_t)eh.e_shnum * sizeof(Elf64_Shdr) > size || eh.e_shstrndx >= eh.e_shnum) {
    *why = "ELF section table out of bounds (truncated image?)";
    return CUDA_ERROR_INVALID_IMAGE;
  }
  std::vector<Elf64_Shdr> sh(eh.e_shnum);
  for (unsigned i = 0; i < eh.e_shnum; ++i) sh[i] = rd<Elf64_Shdr>(d + eh.e_shoff + i * sizeof(Elf64_Shdr));
  for (const Elf64_Shdr& s : sh) {
    if (s.sh_type != SHT_NOBITS && s.sh_offset + s.sh_size > size) {
      *why = "ELF section out of bounds (truncated image?)";
      return CUDA_ERROR_INVALID_IMAGE;
    }
  }
  const char* shstr = (const char*)d + sh[eh.e_shstrndx].sh_offset;
  size_t shstr_size = sh[eh.e_shstrndx].sh_size;
  auto section_name = [&](const Elf64_Shdr& s) -> std::string {
    return s.sh_name < shstr_size ? std::string(shstr + s.sh_name) : std::string();
  };
  std::map<std::string, const Elf64_Shdr*> by_name;
  for (const Elf64_Shdr& s : sh) by_name[section_name(s)] = &s;
  bool reserved_smem = by_name.count(".nv.shared.reserved.0") > 0;
  for (const Elf64_Shdr& symtab : sh) {
    if (symtab.sh_type != SHT_SYMTAB || symtab.sh_link >= sh.size()) continue;
    const Elf64_Shdr& strtab = sh[symtab.sh_link];
    size_t count = symtab.sh_size / sizeof(Elf64_Sym);
    for (size_t i = 0; i < count; ++i) {
      Elf64_Sym sym = rd<Elf64_Sym>(d + symtab.sh_offset + i * sizeof(Elf64_Sym));
      if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || !(sym.st_other & 0x10)) continue;
      if (sym.st_name >= strtab.sh_size) continue;
      ImageKernel k;
      k.name = (const char*)d + strtab.sh_offset + sym.st_name;
      auto info = by_name.find(".nv.info." + k.name);
      if (info != by_name.end() &&
          !parse_nv_info(d + info->second->sh_offset, info->second->sh_size, &k)) {
        *why = "malformed .nv.info." + k.name + " section";
        return CUDA_ERROR_INVALID_IMAGE;
      }
      auto shared = by_name.find(".nv.shared." + k.name);
      if (shared != by_name.end()) {
        size_t bytes = shared->second->sh_size;
        k.static_shared = (unsigned)(reserved_smem && bytes >= 1024 ? bytes - 1024 : bytes);
      }
      out->kernels.push_back(std::move(k));
    }
  }
  out->source = "sm_" + std::to_string(image_sm) + " cubin";
  return CUDA_SUCCESS;
}

/* ---- PTX ------------------------------------------------------------------------------------ */

unsigned ptx_type_size(const std::string& t) {
  if (t == ".u8" || t == ".s8" || t == ".b8") return 1;
  if (t == ".u16" || t == ".s16" || t == ".b16" || t == ".f16") return 2;
  if (t == ".u32" || t == ".s32" || t == ".b32" || t == ".f32") return 4;
  if (t == ".u64" || t == ".s64" || t == ".b64" || t == ".f64") return 8;
  return 0;
}

CUresult parse_ptx(const std::string& text, int sm, Image* out, std::string* why) {
  if (text.find(".version") == std::string::npos || text.find(".target") == std::string::npos) {
    *why = "neither a fatbin, an ELF cubin, nor PTX text (no .version/.target)";
    return CUDA_ERROR_INVALID_PTX;
  }
  size_t t = text.find(".target");
  int target = 0;
  sscanf(text.c_str() + t, ".target sm_%d", &target);
  if (target > sm) {
    *why = "PTX for sm_" + std::to_string(target) + " cannot be compiled for sm_" + std::to_string(sm);
    return CUDA_ERROR_NO_BINARY_FOR_GPU;
  }
  size_t pos = 0;
  while ((pos = text.find(".entry", pos)) != std::string::npos) {
    pos += 6;
    size_t open = text.find('(', pos);
    size_t close = text.find(')', open == std::string::npos ? pos : open);
    if (open == std::string::npos || close == std::string::npos) break;
    ImageKernel k;
    std::string name = text.substr(pos, open - pos);
    name.erase(0, name.find_first_not_of(" \t\r\n"));
    name.erase(name.find_last_not_of(" \t\r\n") + 1);
    k.name = name;
    std::string list = text.substr(open + 1, close - open - 1);
    size_t p = 0;
    unsigned offset = 0;
    while ((p = list.find(".param", p)) != std::string::npos) {
      p += 6;
      size_t end = list.find(',', p);
      std::string decl = list.substr(p, end == std::string::npos ? std::string::npos : end - p);
      unsigned align = 0, size = 0, count = 1;
      char type[16] = {0};
      const char* c = decl.c_str();
      if (sscanf(c, " .align %u %15s", &align, type) != 2) sscanf(c, " %15s", type);
      size = ptx_type_size(type);
      size_t bracket = decl.find('[');
      if (bracket != std::string::npos) count = (unsigned)strtoul(decl.c_str() + bracket + 1, nullptr, 10);
      if (size == 0) {
        *why = "unsupported PTX parameter declaration '" + decl + "' of " + name;
        return CUDA_ERROR_INVALID_PTX;
      }
      if (align == 0) align = size;
      offset = (offset + align - 1) / align * align;
      k.params.push_back(ImageParam{offset, size * count});
      offset += size * count;
    }
    k.param_bytes = offset;
    k.has_layout = true;
    out->kernels.push_back(std::move(k));
    pos = close;
  }
  out->source = "compute_" + std::to_string(target) + " PTX";
  return CUDA_SUCCESS;
}

/* ---- fatbin --------------------------------------------------------------------------------- */

CUresult parse_fatbin(const unsigned char* d, int sm, Image* out, std::string* why) {
  uint16_t header_size = rd<uint16_t>(d + 6);
  uint64_t fat_size = rd<uint64_t>(d + 8);
  if (rd<uint16_t>(d + 4) != 1 || header_size != 16 || fat_size == 0 || fat_size > (1ull << 32)) {
    *why = "fatbin header is malformed (version " + std::to_string(rd<uint16_t>(d + 4)) + ")";
    return CUDA_ERROR_INVALID_IMAGE;
  }
  const unsigned char* best_elf = nullptr;
  size_t best_elf_size = 0;
  int best_elf_sm = -1;
  std::vector<unsigned char> elf_buf, ptx_buf;
  std::string ptx;
  int ptx_sm = -1;
  std::vector<int> seen;
  for (uint64_t off = header_size; off < header_size + fat_size;) {
    const unsigned char* e = d + off;
    uint16_t kind = rd<uint16_t>(e);
    uint32_t eh_size = rd<uint32_t>(e + 4);
    uint64_t payload = rd<uint64_t>(e + 8);
    if (eh_size < 64 || off + eh_size + payload > header_size + fat_size || (kind != 1 && kind != 2)) {
      *why = "fatbin entry at offset " + std::to_string(off) + " is malformed";
      return CUDA_ERROR_INVALID_IMAGE;
    }
    uint32_t compressed = rd<uint32_t>(e + 16);
    int arch = (int)rd<uint32_t>(e + 28);
    uint64_t flags = rd<uint64_t>(e + 40);
    uint64_t full = rd<uint64_t>(e + 56);
    const unsigned char* body = e + eh_size;
    size_t body_size = payload;
    std::vector<unsigned char> inflated;
    seen.push_back(kind == 2 ? arch : -arch);
    bool usable = kind == 2 ? (arch / 10 == sm / 10 && arch <= sm) : arch <= sm;
    if (usable && (flags & (kFlagLz4 | kFlagZstd))) {
      if (!inflate(body, compressed ? compressed : payload, flags, full, &inflated, why))
        return CUDA_ERROR_INVALID_IMAGE;
      body = inflated.data();
      body_size = inflated.size();
    }
    if (usable && kind == 2 && arch > best_elf_sm) {
      elf_buf.assign(body, body + body_size);
      best_elf = elf_buf.data();
      best_elf_size = body_size;
      best_elf_sm = arch;
    } else if (usable && kind == 1 && arch > ptx_sm) {
      ptx.assign((const char*)body, strnlen((const char*)body, body_size));
      ptx_sm = arch;
    }
    off += eh_size + payload;
  }
  if (best_elf) return parse_cubin(best_elf, best_elf_size, sm, out, why);
  if (ptx_sm >= 0) return parse_ptx(ptx, sm, out, why);
  *why = "the fatbin has no sm_" + std::to_string(sm / 10) + "x cubin and no PTX for compute_<=" +
         std::to_string(sm) + " (entries:";
  for (int a : seen) *why += a >= 0 ? " sm_" + std::to_string(a) : " compute_" + std::to_string(-a);
  *why += ")";
  return CUDA_ERROR_NO_BINARY_FOR_GPU;
}

}  // namespace

CUresult parse_image(const void* data, int sm, Image* out, std::string* why) {
  const unsigned char* d = (const unsigned char*)data;
  if (rd<uint32_t>(d) == kFatbinMagic) return parse_fatbin(d, sm, out, why);
  if (memcmp(d, ELFMAG, SELFMAG) == 0) {
    Elf64_Ehdr eh = rd<Elf64_Ehdr>(d);
    size_t size = eh.e_shoff + (size_t)eh.e_shnum * eh.e_shentsize;
    return parse_cubin(d, size, sm, out, why);
  }
  return parse_ptx(std::string((const char*)d), sm, out, why);
}

}  // namespace emu
