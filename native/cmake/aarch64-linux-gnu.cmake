# CMake toolchain file: cross-compile earshot's native parts for 64-bit ARM Linux
# (Raspberry Pi 4/5 on Raspberry Pi OS bookworm) with Debian's g++-aarch64-linux-gnu.
# Used by scripts/cross-build; pick the CPU with EARSHOT_PRESET=pi4|pi5.
#
# Target libraries come from Debian multiarch (dpkg --add-architecture arm64, then e.g.
# libsndfile1-dev:arm64): the cross compiler already searches /usr/include and
# /usr/lib/aarch64-linux-gnu, and CMake's find_library follows CMAKE_LIBRARY_ARCHITECTURE,
# so no sysroot is needed. Only pkg-config must be pointed at the arm64 .pc files.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# pkg-config (FindPkgConfig) must see the arm64 .pc files only, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
