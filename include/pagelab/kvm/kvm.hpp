#pragma once
// Everything of the kvm layer in one include.
#include "pagelab/kvm/error.hpp"
#include "pagelab/kvm/exit.hpp"
#include "pagelab/kvm/file_descriptor.hpp"
#include "pagelab/kvm/flavour.hpp"
#include "pagelab/kvm/guest_memory.hpp"
#include "pagelab/kvm/system.hpp"
#include "pagelab/kvm/vcpu.hpp"
#include "pagelab/kvm/vm.hpp"
