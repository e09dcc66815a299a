// Placeholder so the test target links while the real tests are written.
#include <gtest/gtest.h>
