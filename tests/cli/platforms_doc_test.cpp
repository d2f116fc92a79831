// docs/platforms.md is what users have instead of the developers' notes: it names every
// known deviation the code lists, and nothing in the repository points at a file users
// do not have.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cli/run_pagelab.hpp"
#include "pagelab/lab/judge/access_deviations.hpp"
#include "pagelab/lab/judge/ad_deviations.hpp"
#include "pagelab/lab/modes/deviations.hpp"

namespace pagelab::test {
namespace {

namespace fs = std::filesystem;

std::string platforms_doc() {
  return slurp(fs::path(PAGELAB_SOURCE_DIR) / "docs" / "platforms.md");
}

// `id` in backquotes, as the document names deviations.
bool names(const std::string& doc, const std::string& id) {
  return contains(doc, "`" + id + "`");
}

TEST(PlatformsDoc, NamesEveryKnownAccessDeviation) {
  const auto doc = platforms_doc();
  ASSERT_FALSE(doc.empty()) << "docs/platforms.md is missing or empty";
  for (const auto& d : lab::known_access_deviations()) {
    EXPECT_TRUE(names(doc, d.id)) << "docs/platforms.md does not name " << d.id;
  }
}

TEST(PlatformsDoc, NamesEveryKnownModeDeviation) {
  const auto doc = platforms_doc();
  for (const auto& d : lab::known_deviations()) {
    EXPECT_TRUE(names(doc, d.id)) << "docs/platforms.md does not name " << d.id;
  }
}

TEST(PlatformsDoc, NamesEveryKnownAdDeviation) {
  const auto doc = platforms_doc();
  for (const auto& d : lab::known_ad_deviations()) {
    EXPECT_TRUE(names(doc, d.id)) << "docs/platforms.md does not name " << d.id;
  }
}

TEST(PlatformsDoc, LinksTheNestedKvmDocumentThatExists) {
  EXPECT_TRUE(contains(platforms_doc(), "(nested-kvm.md)"));
  EXPECT_TRUE(fs::exists(fs::path(PAGELAB_SOURCE_DIR) / "docs" / "nested-kvm.md"));
  EXPECT_TRUE(contains(slurp(fs::path(PAGELAB_SOURCE_DIR) / "README.md"), "docs/platforms.md"));
}

// The developers' platform notes live outside the repository; users only have
// docs/platforms.md. (The name is split so this file does not match itself.)
TEST(PlatformsDoc, NoFileInTheRepositoryPointsAtTheDevelopersNotes) {
  const std::string notes = std::string("PLATFORM") + ".md";
  const fs::path root(PAGELAB_SOURCE_DIR);
  int files = 0;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    const auto name = it->path().filename().string();
    if (it->is_directory() && (name.starts_with(".") || name.starts_with("build"))) {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file() || it->file_size() > (1U << 20)) continue;
    ++files;
    EXPECT_FALSE(contains(slurp(it->path()), notes))
        << fs::relative(it->path(), root).string() << " mentions " << notes
        << ", which users do not have: point at docs/platforms.md";
  }
  EXPECT_GT(files, 50) << "walked too few files to be the repository";
}

}  // namespace
}  // namespace pagelab::test
