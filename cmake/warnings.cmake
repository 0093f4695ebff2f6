# Warnings for our own targets only. No -Wnull-dereference: GCC 12 reports false positives
# inside libstdc++ when it inlines CLI11's string splitting.
function(kms_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wcast-align -Wunused -Woverloaded-virtual -Wformat=2)
endfunction()
