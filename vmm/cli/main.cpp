#include "commands.hpp"

int main(int argc, char** argv) {
  return pagelab::cli::run(argc, argv);
}
