// Hostile input for every file reader (issue 8): what is not a regular file (FIFO, /dev/zero,
// folder), sizes declared beyond the file or beyond 64 bits (IDX, safetensors), gzip data that
// inflates past its header, oversized images refused before decoding, empty datasets, IDX labels
// beyond 10 classes, class names that are not UTF-8, and weights in F16/BF16, without
// num_batches_tracked or inside a training checkpoint. Each class is tested at its boundary, in
// the library and through the CLI (exit code and one-line message).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "convnet/checked.hpp"
#include "convnet/data/dataset.hpp"
#include "convnet/data/internal.hpp"
#include "convnet/io/input_file.hpp"
#include "convnet/io/safetensors.hpp"
#include "convnet/model/model.hpp"
#include "support/cli.hpp"
#include "support/data_files.hpp"

namespace convnet {
namespace {

using namespace convnet::testing;

// ---- regular files only ----

// A FIFO with no writer: opening it for reading the ordinary way would block forever.
std::string make_fifo(const TempDir& dir, const std::string& name) {
  const std::string path = dir.file(name);
  fs::create_directories(fs::path(path).parent_path());
  EXPECT_EQ(::mkfifo(path.c_str(), 0600), 0) << path;
  return path;
}

TEST(RegularFilesOnly, EveryKindOfNonFileIsRefusedAtOnceNamingIt) {
  TempDir dir;
  const std::string fifo = make_fifo(dir, "pipe");
  expect_io_error([&] { InputFile f(fifo); }, {fifo, "is a FIFO (named pipe), not a regular file"});
  expect_io_error([&] { InputFile f("/dev/zero"); }, {"/dev/zero", "is a character device, not a regular file"});
  expect_io_error([&] { InputFile f(dir.path().string()); }, {dir.path().string(), "is a folder, not a regular file"});
  expect_io_error([&] { InputFile f(dir.file("absent")); }, {dir.file("absent"), "no such file"});
  write_file(dir.file("real"), {1, 2, 3});
  fs::create_symlink(dir.file("real"), dir.file("link"));
  EXPECT_EQ(InputFile(dir.file("link")).size(), 3u);  // a link to a regular file is one
  expect_io_error([&] { (void)InputFile(dir.file("real")).read_all(2, "test file"); },
                  {dir.file("real"), "test file of 3 bytes is larger than the limit of 2 bytes"});
}

TEST(RegularFilesOnly, EveryReaderUsesTheCheck) {
  TempDir dir;
  write_file(dir.file("lab"), idx_labels({0}));
  const std::string fifo = make_fifo(dir, "pipe");
  expect_io_error([&] { (void)read_idx(fifo, dir.file("lab"), {}); }, {fifo, "FIFO"});
  expect_io_error([&] { (void)read_idx("/dev/zero", dir.file("lab"), {}); }, {"/dev/zero", "character device"});
  expect_io_error([&] { (void)read_cifar({fifo}, false, {}); }, {fifo, "FIFO"});
  expect_io_error([&] { (void)read_safetensors(fifo); }, {fifo, "FIFO"});
  expect_io_error([&] { (void)read_safetensors("/dev/zero"); }, {"/dev/zero", "character device"});
  expect_io_error([&] { (void)read_single_image(fifo, Shape{1, 4, 4}); }, {fifo, "FIFO"});
  expect_io_error([&] { (void)read_single_image("/dev/zero", Shape{1, 4, 4}); }, {"/dev/zero", "character device"});

  // Under a dataset's file names: found, then refused by the reader (not reported as missing, not skipped).
  write_png(dir.file("images/a/1.png"), 2, 2, 1, 0);
  const std::string fifo_png = make_fifo(dir, "images/a/2.png");
  expect_io_error([&] { (void)read_image_folder(dir.file("images"), 1); }, {fifo_png, "FIFO"});
  for (const char* name : {"train.bin", "test.bin"}) write_file(dir.file(std::string("c100/") + name), cifar_record({0, 0}, 0));
  const std::string fifo_names = make_fifo(dir, "c100/fine_label_names.txt");
  expect_io_error([&] { (void)load_dataset(dir.file("c100")); }, {fifo_names, "FIFO"});
  write_file(dir.file("idx/train-labels-idx1-ubyte"), idx_labels({0}));
  write_file(dir.file("idx/t10k-images-idx3-ubyte"), idx_images(1, 2, 2));
  write_file(dir.file("idx/t10k-labels-idx1-ubyte"), idx_labels({0}));
  const std::string fifo_idx = make_fifo(dir, "idx/train-images-idx3-ubyte");
  expect_io_error([&] { (void)load_dataset(dir.file("idx")); }, {fifo_idx, "FIFO"});
}

// ---- IDX: declared sizes ----

TEST(IdxSizes, DeclaredSizeIsCheckedAgainstThePlainFileBeforeReading) {
  TempDir dir;
  write_file(dir.file("lab"), idx_labels({0}));
  // 2^31 - 1 images of 65535 x 65535 still fits in 64 bits: a plain 16-byte file is "truncated".
  const auto label_header = [](uint32_t count) {
    Bytes out;
    put32(out, 0x00000801);
    put32(out, count);
    return out;
  };
  write_file(dir.file("big"), idx_header(0x7fffffff, 0xffff, 0xffff));
  write_file(dir.file("lab-big"), label_header(0x7fffffff));
  const uint64_t declared = 16 + uint64_t{0x7fffffff} * 0xffff * 0xffff;
  expect_io_error([&] { (void)read_idx(dir.file("big"), dir.file("lab-big"), {}); },
                  {dir.file("big"), "truncated IDX image file", "expected " + std::to_string(declared) + " bytes, found 16"});
  // 2^32 - 1 images of 65535 x 65535 does not: a SizeError naming the file, before any allocation.
  write_file(dir.file("huge"), idx_header(0xffffffff, 0xffff, 0xffff));
  write_file(dir.file("lab-huge"), label_header(0xffffffff));
  expect_error<SizeError>([&] { (void)read_idx(dir.file("huge"), dir.file("lab-huge"), {}); },
                          {dir.file("huge"), "does not fit in 64 bits"});
  // One byte too many in a plain file (one too few: IdxTest.TruncatedFiles).
  Bytes images = idx_images(1, 2, 2);
  images.push_back(7);
  write_file(dir.file("long"), images);
  expect_io_error([&] { (void)read_idx(dir.file("long"), dir.file("lab"), {}); },
                  {dir.file("long"), "trailing data", "expected 20 bytes, found 21"});
}

TEST(IdxSizes, EmptyAndZeroSizedDataAreErrorsNamingTheFile) {
  TempDir dir;
  write_file(dir.file("none"), idx_images(0, 2, 2));
  write_file(dir.file("lab0"), idx_labels({}));
  expect_io_error([&] { (void)read_idx(dir.file("none"), dir.file("lab0"), {}); },
                  {dir.file("none"), "holds no images", "empty dataset"});
  write_file(dir.file("flat"), idx_header(1, 0, 5));
  write_file(dir.file("lab"), idx_labels({0}));
  expect_io_error([&] { (void)read_idx(dir.file("flat"), dir.file("lab"), {}); }, {dir.file("flat"), "empty images (0x5)"});
  write_file(dir.file("thin"), idx_header(1, 5, 0));
  expect_io_error([&] { (void)read_idx(dir.file("thin"), dir.file("lab"), {}); }, {dir.file("thin"), "empty images (5x0)"});
  write_file(dir.file("empty"), {});
  expect_io_error([&] { (void)read_idx(dir.file("empty"), dir.file("lab"), {}); },
                  {dir.file("empty"), "truncated", "found 0"});
  write_file(dir.file("magic"), {0, 0, 8, 4, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0});
  expect_io_error([&] { (void)read_idx(dir.file("magic"), dir.file("lab"), {}); },
                  {dir.file("magic"), "wrong magic", "found 0x00000804"});
  write_file(dir.file("fake.gz"), {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  try {
    (void)read_idx(dir.file("fake.gz"), dir.file("lab"), {});
    ADD_FAILURE() << "a corrupt gzip stream must be an error";
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()), dir.file("fake.gz") +
                                         ": cannot read the file (corrupt gzip data?) after 0 bytes: invalid stored block lengths");
  }
}

TEST(IdxSizes, CountsThatDisagreeAreFoundFromTheHeadersAlone) {
  TempDir dir;
  // The image file's body is missing: the disagreement is reported before it would be read.
  write_file(dir.file("img"), idx_header(3, 28, 28));
  write_file(dir.file("lab"), idx_labels({0, 1}));
  expect_io_error([&] { (void)read_idx(dir.file("img"), dir.file("lab"), {}); }, {dir.file("lab"), "2 labels", "3 images"});
}

// ---- IDX: gzip bombs ----

TEST(IdxGzip, InflatesNoFurtherThanTheHeaderDeclares) {
  TempDir dir;
  write_file(dir.file("lab"), idx_labels({1, 2}));
  // Declared: 2 images of 2x2. Then 64 MB of zeros, and the gzip stream is cut short at the end:
  // a reader that inflated everything would report the cut; one that stops reports the excess.
  Bytes bomb = idx_images(2, 2, 2);
  bomb.resize(bomb.size() + (size_t{64} << 20), 0);
  write_gz(dir.file("bomb.gz"), bomb);
  Bytes gz = read_bytes(dir.file("bomb.gz"));
  EXPECT_LT(gz.size(), size_t{1} << 20);
  gz.resize(gz.size() - 8);  // no CRC and length trailer
  write_file(dir.file("bomb.gz"), gz);
  expect_io_error([&] { (void)read_idx(dir.file("bomb.gz"), dir.file("lab"), {}); },
                  {dir.file("bomb.gz"), "decompresses to more than the 24 bytes its header declares", "stopped reading"});
  // The boundary: exactly the declared size reads; one byte more is refused.
  write_gz(dir.file("exact.gz"), idx_images(2, 2, 2));
  EXPECT_EQ(read_idx(dir.file("exact.gz"), dir.file("lab"), {}).pixels.size(), 8u);
  Bytes one_more = idx_images(2, 2, 2);
  one_more.push_back(0);
  write_gz(dir.file("more.gz"), one_more);
  expect_io_error([&] { (void)read_idx(dir.file("more.gz"), dir.file("lab"), {}); },
                  {dir.file("more.gz"), "more than the 24 bytes"});
}

TEST(IdxGzip, AHugeDeclaredSizeIsNotAllocatedForAShortStream) {
  TempDir dir;
  // 2^31 - 1 images of 4x4 = 32 GiB declared, 16 bytes present: truncated, without allocating 32 GiB.
  write_gz(dir.file("img.gz"), idx_header(0x7fffffff, 4, 4));
  Bytes labels;
  put32(labels, 0x00000801);
  put32(labels, 0x7fffffff);
  labels.resize(labels.size() + 100, 0);
  write_gz(dir.file("lab.gz"), labels);
  expect_io_error([&] { (void)read_idx(dir.file("img.gz"), dir.file("lab.gz"), {}); },
                  {dir.file("lab.gz"), "truncated IDX label file", "expected 2147483655 bytes, found 108"});
}

TEST(DataFileLimit, ReadRestStopsAtItsLimit) {
  TempDir dir;
  write_gz(dir.file("a.gz"), Bytes(4096, 1));
  detail::DataFile exact(dir.file("a.gz"));
  EXPECT_EQ(exact.read_rest(4096, "test data").size(), 4096u);
  write_gz(dir.file("b.gz"), Bytes(size_t{3} << 20, 1));  // several chunks
  detail::DataFile over(dir.file("b.gz"));
  expect_io_error([&] { (void)over.read_rest((size_t{3} << 20) - 1, "test data"); },
                  {dir.file("b.gz"), "decompresses to more than the limit of 3145727 bytes"});
  write_file(dir.file("plain"), Bytes(10, 1));
  detail::DataFile plain(dir.file("plain"));
  expect_io_error([&] { (void)plain.read_rest(9, "test data"); }, {dir.file("plain"), "test data of 10 bytes is larger"});
}

// ---- IDX: classes from the labels ----

TEST(IdxClasses, LabelsUpTo255GiveTheClassCount) {
  TempDir dir;
  write_file(dir.file("img"), idx_images(3, 2, 2));
  write_file(dir.file("lab"), idx_labels({0, 255, 17}));
  const Dataset d = read_idx(dir.file("img"), dir.file("lab"), {});
  EXPECT_EQ(d.class_names.size(), 256u);
  EXPECT_EQ(d.labels, (std::vector<int64_t>{0, 255, 17}));

  // load_dataset: the count covers both splits; Fashion-MNIST's names only when the labels fit them.
  for (const char* folder : {"mnist20", "fashion20", "fashion10"}) {
    const bool twenty = std::string(folder).ends_with("20");
    write_file(dir.file(std::string(folder) + "/train-images-idx3-ubyte"), idx_images(2, 2, 2));
    write_file(dir.file(std::string(folder) + "/train-labels-idx1-ubyte"), idx_labels({0, 3}));
    write_file(dir.file(std::string(folder) + "/t10k-images-idx3-ubyte"), idx_images(1, 2, 2));
    write_file(dir.file(std::string(folder) + "/t10k-labels-idx1-ubyte"), idx_labels({static_cast<uint8_t>(twenty ? 19 : 9)}));
  }
  DataSplits s = load_dataset(dir.file("mnist20"));
  EXPECT_EQ(s.train.class_names, digits(20));
  EXPECT_EQ(s.test.class_names, digits(20));
  s = load_dataset(dir.file("fashion20"));
  EXPECT_EQ(s.train.class_names, digits(20));
  s = load_dataset(dir.file("fashion10"));
  EXPECT_EQ(s.train.class_names.size(), 10u);
  EXPECT_EQ(s.train.class_names[9], "Ankle boot");
}

// ---- class names must be UTF-8 (they go into the checkpoint's JSON) ----

TEST(ClassNames, NonUtf8FolderNamesAreRefusedAtLoadNamingThePath) {
  TempDir dir;
  const std::string bad = std::string("caf") + '\xe9';  // Latin-1 e-acute
  write_png(dir.file("train/" + bad + "/1.png"), 2, 2, 1, 0);
  write_png(dir.file("train/ok/1.png"), 2, 2, 1, 0);
  write_png(dir.file("train/\xc3\xa9t\xc3\xa9/1.png"), 2, 2, 1, 0);  // UTF-8 "été" is fine
  expect_io_error([&] { (void)read_image_folder(dir.file("train"), 1); },
                  {dir.file("train/" + bad), "not valid UTF-8", "byte 0xe9 at offset 3"});
  fs::rename(dir.file("train/" + bad), dir.file("train/cafe"));
  EXPECT_EQ(read_image_folder(dir.file("train"), 1).class_names,
            (std::vector<std::string>{"cafe", "ok", "\xc3\xa9t\xc3\xa9"}));
}

TEST(ClassNames, EveryInvalidUtf8FormIsRefused) {
  for (const std::string& bad : {std::string("\x80"), std::string("\xc0\xaf"), std::string("\xc3"),
                                 std::string("\xe0\x80\xaf"), std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"),
                                 std::string("\xf8\x88\x80\x80\x80"), std::string("a\xff")}) {
    expect_io_error([&] { detail::check_class_name(bad, "src"); }, {"src", "not valid UTF-8"});
  }
  for (const std::string& good : {std::string(""), std::string("plain"), std::string("\xc2\x80"),
                                  std::string("\xef\xbf\xbd"), std::string("\xf0\x9f\x90\x88"), std::string("\xf4\x8f\xbf\xbf")}) {
    EXPECT_NO_THROW(detail::check_class_name(good, "src")) << good;
  }
}

TEST(ClassNames, NonUtf8NameFilesAreRefusedNamingTheLine) {
  TempDir dir;
  write_file(dir.file("train.bin"), cifar_record({0, 0}, 0));
  write_file(dir.file("test.bin"), cifar_record({0, 0}, 0));
  write_file(dir.file("fine_label_names.txt"), {'a', '\n', 'b', 0xff, '\n'});
  expect_io_error([&] { (void)load_dataset(dir.path().string()); },
                  {dir.file("fine_label_names.txt") + ":2", "not valid UTF-8"});
  write_file(dir.file("fine_label_names.txt"), {' ', '\n'});
  expect_io_error([&] { (void)load_dataset(dir.path().string()); }, {dir.file("fine_label_names.txt"), "no class names"});
}

// ---- images: dimensions checked before decoding ----

// Appends a PNG chunk: length, type, data, CRC of type and data.
void add_chunk(Bytes& out, const char* type, const Bytes& data) {
  put32(out, static_cast<uint32_t>(data.size()));
  Bytes typed(type, type + 4);
  typed.insert(typed.end(), data.begin(), data.end());
  out.insert(out.end(), typed.begin(), typed.end());
  put32(out, static_cast<uint32_t>(crc32(0, typed.data(), static_cast<uInt>(typed.size()))));
}

// A PNG's signature and IHDR chunk for (w, h, bit depth, colour type, interlace).
Bytes png_ihdr(uint32_t w, uint32_t h, uint8_t depth = 8, uint8_t colour = 0, bool interlaced = false) {
  Bytes out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  Bytes ihdr;
  put32(ihdr, w);
  put32(ihdr, h);
  ihdr.insert(ihdr.end(), {depth, colour, 0, 0, static_cast<uint8_t>(interlaced ? 1 : 0)});
  add_chunk(out, "IHDR", ihdr);
  return out;
}

// An 8-bit grey PNG that is only its signature and IHDR chunk: enough to read the dimensions,
// nothing to decode. Refused by the size limit, it says so; past the limit, decoding finds it corrupt.
Bytes png_header_only(uint32_t w, uint32_t h) { return png_ihdr(w, h); }

// zlib's compression of `raw`.
Bytes deflated(const Bytes& raw) {
  Bytes compressed(compressBound(static_cast<uLong>(raw.size())));
  uLongf size = compressed.size();
  EXPECT_EQ(compress2(compressed.data(), &size, raw.data(), static_cast<uLong>(raw.size()), 9), Z_OK);
  compressed.resize(size);
  return compressed;
}

// Writes `bytes` as DIR/name, reads it as an image to predict on, and expects an IoError naming the
// file and saying each of `parts`.
void expect_image_refused(const TempDir& dir, const std::string& name, const Bytes& bytes,
                          std::vector<std::string> parts) {
  write_file(dir.file(name), bytes);
  parts.insert(parts.begin(), dir.file(name));
  expect_io_error([&] { (void)read_single_image(dir.file(name), Shape{3, 4, 4}); }, parts);
}

TEST(ImageLimits, PngChunkLongerThanTheFileIsRefusedBeforeDecoding) {
  // Found by fuzz_image: stb reserves a chunk's declared length before reading it (2 GB for this
  // 92-byte file), so a chunk that runs past the end of the file is refused first.
  TempDir dir;
  // The fuzzer's input: IHDR, an IDAT of corrupt data, then a chunk declaring 1.4 GB.
  const Bytes bytes = {
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
      0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0x12, 0x16, 0xf1,
      0x4d, 0x00, 0x00, 0x00, 0x1d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x47, 0x0d, 0x0a,
      0x1a, 0x0a, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
      0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0x12, 0x16, 0xf1, 0x4d, 0x53, 0x80, 0xf6, 0x34, 0x49, 0x44,
      0x41, 0x54, 0x78, 0xff, 0xff, 0xff, 0x44, 0xae, 0x42, 0x60, 0x82};
  expect_image_refused(dir, "bomb.png", bytes, {"PNG chunk at byte 74 declares", "(truncated or corrupt); not decoded"});
  // Found by fuzz_image after that check: the last chunk's length and type are there but its data
  // and checksum are not (11 bytes declaring 1.4 GB), and stb reserved the 1.4 GB.
  const Bytes cut = {
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
      0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x08, 0x03, 0x00, 0x00, 0x00, 0x2c, 0x3e, 0xe4,
      0x86, 0x00, 0x00, 0x00, 0x09, 0x50, 0x4c, 0x54, 0x45, 0xff, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00,
      0x00, 0xff, 0x2d, 0x4a, 0xcd, 0x8a, 0x00, 0x00, 0x00, 0x01, 0x74, 0x52, 0x00, 0x65, 0x80, 0xad,
      0x5e, 0x5b, 0x46, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x00, 0x00, 0x02,
      0x08, 0x02, 0x00, 0x00, 0x00, 0x52, 0x00, 0x12, 0x16, 0xf1, 0x4d, 0x53, 0x80, 0xf6, 0x34, 0x49,
      0x44, 0x41, 0x54, 0x78, 0xff, 0xff};
  expect_image_refused(dir, "cut.png", cut, {"PNG chunk at byte 91 declares 1400960564 bytes and a checksum but only 3 follow"});
}

TEST(ImageLimits, PngWhoseFirstImageDataChunkIsEmptyDecodes) {
  // Found by fuzz_image: stb copied an empty first IDAT from a null pointer (undefined behaviour).
  // Empty IDAT chunks are valid PNG; libpng decodes around them.
  TempDir dir;
  Bytes png = png_ihdr(2, 1);
  add_chunk(png, "IDAT", {});
  add_chunk(png, "IDAT", deflated({0, 40, 200}));  // filter byte 0, then the pixels 40 and 200
  add_chunk(png, "IEND", {});
  write_file(dir.file("empty-idat.png"), png);
  EXPECT_EQ(read_single_image(dir.file("empty-idat.png"), Shape{1, 1, 2}).pixels, (std::vector<uint8_t>{40, 200}));
}

TEST(ImageLimits, JpegWhoseHuffmanTableRunsPastTheFileIsAClearError) {
  // Found by fuzz_image: stb_image's Huffman table builder wrote past its 257-entry array on this
  // header (a DHT segment declaring 65280 bytes in a 78-byte file). The header walk refuses it.
  TempDir dir;
  const Bytes bytes = {
      0xff, 0xd8, 0xff, 0xff, 0xc4, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x47, 0x49, 0x46, 0x38, 0x37, 0x61, 0x0d, 0x47, 0x47, 0x00, 0x0d, 0x49, 0x0d};
  expect_image_refused(dir, "dht.jpg", bytes, {"corrupt JPEG: no frame header (SOF) before its data"});
  // The same overflow in a well-formed segment after the frame header: 16 code lengths of 255 codes
  // each (4080 > 256 codes) reach libjpeg-turbo, which refuses the table.
  Bytes overlong = {0xff, 0xd8, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00,
                    0xff, 0xc4, 0x00, 0x24, 0x00};
  overlong.insert(overlong.end(), 16, 0xff);
  overlong.insert(overlong.end(), 17, 0x01);
  overlong.insert(overlong.end(), {0xff, 0xd9});
  expect_image_refused(dir, "overlong.jpg", overlong, {"corrupt image: Bogus Huffman table definition"});
}

TEST(ImageLimits, TinyJpegFilesDeclaringHugeImagesAreRefusedBeforeDecoding) {
  // A JPEG is decoded whole from what its header declares (found by fuzz_image as a 17-byte RLE TGA of
  // 48 million pixels, within the size limits, that took seconds): at most 4096 pixels per byte.
  TempDir dir;
  // SOI, then a baseline frame header: 8 bits, 4000 rows, 12000 columns, one component.
  const Bytes jpeg = {0xff, 0xd8, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x0f, 0xa0, 0x2e, 0xe0, 0x01, 0x01, 0x11, 0x00};
  expect_image_refused(dir, "bomb.jpg", jpeg, {"image declares 12000x4000 (WxH) pixels in a file of 15 bytes",
                   "more than 4096 pixels per byte"});
}

TEST(ImageLimits, FormatsOtherThanPngAndJpegNeverReachTheDecoder) {
  // stb's other readers trust their headers. Found by fuzz_image: a PGM whose width has 30 digits
  // overflowed an int in stb's PNM parser; a 16-bit PPM shorter than its pixels overflowed stb's
  // 16-to-8-bit copy; a 17-byte RLE TGA declared 48 million pixels. The boundary is the signature:
  // PNG's eight bytes or JPEG's three, whatever the file's name says.
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"pnm-width.png", "P5" + std::string(30, '8') + "\n1 2\n255\n"},
      {"ppm16.png", "P6\n1 9\n425\n\x01\x02\x03\x04\x05\x06"},
      {"tga.png", std::string("\x01\x00\x0a\x00\x47\x5d\x46\x34\x34\x61\x4d\x17\x17\x31\x0f\x0f\x0f", 17)},
      {"bmp.jpg", "BM\x3a\x00\x00\x00"},
      {"gif.png", "GIF89a\x01\x00\x01\x00"},
      {"png7.png", "\x89PNG\r\n\x1a"},  // one byte short of PNG's signature
      {"jpeg2.jpg", "\xff\xd8"},           // one byte short of JPEG's
  };
  for (const auto& [name, bytes] : refused) {
    write_file(dir.file(name), bytes);
    expect_io_error([&] { (void)read_single_image(dir.file(name), Shape{1, 4, 4}); },
                    {dir.file(name), "not a PNG or JPEG image (it starts with ", "convert it to PNG or JPEG"});
  }
  write_file(dir.file("ppm.png"), std::string("P6\n1 1\n255\n\x01\x02\x03"));
  expect_io_error([&] { (void)read_single_image(dir.file("ppm.png"), Shape{1, 4, 4}); },
                  {"(it starts with 50 36 0a 31)"});
  // In a folder, and when choosing the folder's channel count, the check comes first too.
  fs::create_directories(dir.file("set/a"));
  write_file(dir.file("set/a/x.png"), std::string("P5 2 2 255\n\x01\x02\x03\x04"));
  expect_io_error([&] { (void)read_image_folder(dir.file("set"), 1); }, {dir.file("set/a/x.png"), "not a PNG or JPEG"});
  expect_io_error([&] { (void)detail::image_folder_channels(dir.file("set")); }, {dir.file("set/a/x.png"), "not a PNG"});
}

TEST(ImageLimits, SidesAndPixelCountAreCheckedBeforeDecoding) {
  TempDir dir;
  const auto refused = [&](const std::string& name, uint32_t w, uint32_t h) {
    write_file(dir.file(name), png_header_only(w, h));
    expect_io_error([&] { (void)read_single_image(dir.file(name), Shape{1, 4, 4}); },
                    {dir.file(name), std::to_string(w) + "x" + std::to_string(h) + " (WxH), beyond the limit",
                     "not decoded"});
  };
  const auto decoded = [&](const std::string& name, uint32_t w, uint32_t h) {  // passes the limit, then fails decoding
    write_file(dir.file(name), png_header_only(w, h));
    expect_io_error([&] { (void)read_single_image(dir.file(name), Shape{1, 4, 4}); }, {dir.file(name), "corrupt"});
  };
  refused("huge.png", 20000, 20000);
  refused("wide.png", 16385, 1);
  refused("tall.png", 1, 16385);
  decoded("side.png", 16384, 1);
  decoded("area.png", 16384, 4096);  // 2^26 pixels: the limit itself
  refused("over.png", 16384, 4097);
  // Found by fuzz_image (a PGM of width 0, then resized from pixel -1): no pixels is refused too.
  write_file(dir.file("empty.png"), png_header_only(0, 3));
  expect_io_error([&] { (void)read_single_image(dir.file("empty.png"), Shape{1, 4, 4}); }, {dir.file("empty.png")});
  // A real image at the side limit decodes.
  write_png(dir.file("real.png"), 16384, 1, 1, 0);
  EXPECT_EQ(read_single_image(dir.file("real.png"), Shape{1, 1, 2}).pixels.size(), 2u);
  // In a folder, and when choosing the folder's channel count, the check comes first too.
  write_file(dir.file("set/a/big.png"), png_header_only(20000, 20000));
  expect_io_error([&] { (void)read_image_folder(dir.file("set"), 1); }, {dir.file("set/a/big.png"), "beyond the limit"});
  expect_io_error([&] { (void)detail::image_folder_channels(dir.file("set")); }, {dir.file("set/a/big.png"), "beyond the limit"});
}

TEST(ImageLimits, OversizedTargetShapesAndEmptyFilesAreErrors) {
  TempDir dir;
  write_png(dir.file("g.png"), 2, 2, 1, 0);
  expect_error<Error>([&] { (void)read_single_image(dir.file("g.png"), Shape{1, 16385, 2}); },
                      {dir.file("g.png"), "beyond the limit of 16384 pixels a side"});
  write_file(dir.file("empty.png"), {});
  expect_io_error([&] { (void)read_single_image(dir.file("empty.png"), Shape{1, 2, 2}); }, {dir.file("empty.png"), "not a PNG or JPEG image (it is empty)"});
  Bytes cut = read_bytes(dir.file("g.png"));
  cut.resize(cut.size() / 2);
  write_file(dir.file("set/a/cut.png"), cut);
  expect_io_error([&] { (void)read_image_folder(dir.file("set"), 1); }, {dir.file("set/a/cut.png"), "corrupt"});
}

// A PNG written chunk by chunk: IHDR for (w, h, bit depth, colour type, interlace), then one IDAT
// holding `image_data` zero bytes compressed (zero bytes are valid filtered scanlines).
Bytes png_with_data(uint32_t w, uint32_t h, uint8_t depth, uint8_t colour, bool interlaced, size_t image_data) {
  Bytes out = png_ihdr(w, h, depth, colour, interlaced);
  add_chunk(out, "IDAT", deflated(Bytes(image_data, 0)));
  add_chunk(out, "IEND", {});
  return out;
}

TEST(ImageLimits, PngDataBeyondItsDimensionsIsRefusedBeforeDecoding) {
  TempDir dir;
  // The bomb shape: 64 MB of image data (about 64 KB compressed) behind a 1x1 header.
  write_file(dir.file("bomb.png"), png_with_data(1, 1, 8, 0, false, size_t{64} << 20));
  EXPECT_LT(fs::file_size(dir.file("bomb.png")), 100'000u);
  expect_io_error([&] { (void)read_single_image(dir.file("bomb.png"), Shape{1, 1, 1}); },
                  {dir.file("bomb.png"), "PNG image data inflates to more than the 65538 bytes", "not decoded"});
  // The bound at its edges: one byte less than the scanlines need is libpng's "Not enough image data";
  // the exact size, and that plus the 64 KiB tolerated, decode; one more byte is refused. Bit
  // depths, colour types and Adam7 interlacing each change the exact size.
  struct Case {
    uint32_t w, h;
    uint8_t depth, colour;
    bool interlaced;
    size_t exact;
  };
  const Case cases[] = {
      {1, 1, 8, 0, false, 2},             // grey: 1 filter byte + 1 pixel
      {3, 2, 1, 0, false, 2 * (1 + 1)},   // 1-bit grey: 3 bits round up to a byte
      {5, 3, 8, 2, false, 3 * (1 + 15)},  // RGB
      {5, 3, 8, 2, true, 4 + 4 + 0 + 4 + 10 + 14 + 16},      // RGB, Adam7: rows of passes 1..7
      {7, 9, 16, 4, true, 10 + 10 + 9 + 27 + 34 + 65 + 116},  // grey + alpha, 16-bit, Adam7
  };
  for (const Case& c : cases) {
    for (int64_t extra : {-1, 0, 65536, 65537}) {
      const std::string name = dir.file("p" + std::to_string(c.w) + "x" + std::to_string(c.h) + "-" +
                                        std::to_string(c.depth) + "-" + std::to_string(c.interlaced) + "-" +
                                        std::to_string(extra) + ".png");
      write_file(name, png_with_data(c.w, c.h, c.depth, c.colour, c.interlaced, static_cast<size_t>(static_cast<int64_t>(c.exact) + extra)));
      if (extra < 0) {
        expect_io_error([&] { (void)read_single_image(name, Shape{1, 2, 2}); }, {name, "Not enough image data"});
      } else if (extra <= 65536) {
        EXPECT_NO_THROW((void)read_single_image(name, Shape{1, 2, 2})) << name;
      } else {
        expect_io_error([&] { (void)read_single_image(name, Shape{1, 2, 2}); },
                        {name, "more than the " + std::to_string(c.exact + 65536) + " bytes"});
      }
    }
  }
}

// ---- validation split ----

TEST(ValidationSplit, AnEmptySideIsAnError) {
  Dataset d;
  d.name = "toy/train";
  d.image_shape = Shape{1, 1, 1};
  d.class_names = digits(2);
  d.labels = {0, 1, 0};
  d.pixels = {1, 2, 3};
  Dataset copy = d;
  expect_error<Error>([&] { (void)split_validation(copy, 0.1, 1); }, {"toy/train", "leaves the validation set empty"});
  copy = d;
  expect_error<Error>([&] { (void)split_validation(copy, 0.9, 1); }, {"toy/train", "leaves the training set empty"});
  copy = d;
  EXPECT_EQ(split_validation(copy, 0.34, 1).size(), 1);
  EXPECT_EQ(copy.size(), 2);
}

}  // namespace
}  // namespace convnet
