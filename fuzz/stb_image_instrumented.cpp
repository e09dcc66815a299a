// stb_image compiled into fuzz_image with the fuzzer's coverage and sanitizers. The library links
// Debian's prebuilt libstb, which libFuzzer cannot see into; the executable's own definitions of
// stbi_load and friends come first, so the library's calls decode here instead.
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
