// Phase 3 of `cellc unroll` (UnrollFiles.h): every result file through npy::write into a staging
// folder, then all moved into place together (io::StagedFiles), never over one of the input files.
#include "unroll/UnrollOutputs.h"

#include <filesystem>
#include <map>
#include <system_error>
#include <type_traits>

#include "io/AtomicFile.h"
#include "io/StagedFiles.h"
#include "io/npy.h"

namespace cellc::runtime {

namespace {

namespace fs = std::filesystem;
using Shape = std::vector<int64_t>;

template <class T>
class FolderWriter {
 public:
  FolderWriter(const ir::Layout& layout, const UnrollInputs<T>& in, const UnrollResult<T>& result,
               const std::string& inDir, const std::string& outDir)
      : L_(layout), in_(in), result_(result), traj_(result.trajectory), grads_(result.gradients),
        T_(in.steps), B_(in.batch), inDir_(inDir), outDir_(outDir) {}

 private:
  struct Pending {
    std::string file, what;
    Shape shape;
    std::vector<T> data;
  };

  // Per step buffers, slot at B * offset -> [T, B, dims...].
  std::vector<T> gather(const std::vector<std::vector<T>>& steps, const ir::Slot& s) const {
    std::vector<T> out(static_cast<size_t>(T_ * B_ * s.size));
    for (int64_t t = 0; t < T_; ++t)
      std::copy_n(steps[static_cast<size_t>(t)].data() + B_ * s.offset, B_ * s.size,
                  out.data() + t * B_ * s.size);
    return out;
  }

  std::vector<T> slice(const std::vector<T>& buf, int64_t offset, int64_t n) const {
    return std::vector<T>(buf.begin() + offset, buf.begin() + offset + n);
  }

  Shape batched(const ir::Slot& s, bool withT) const {
    Shape sh;
    if (withT) sh.push_back(T_);
    sh.push_back(B_);
    sh.insert(sh.end(), s.shape.dims.begin(), s.shape.dims.end());
    return sh;
  }

 public:
  std::vector<WrittenFile> write() {
    std::vector<Pending> files;
    for (const ir::Slot& s : L_.outputs)
      files.push_back({s.name + ".npy", "output " + s.name, batched(s, true),
                       gather(traj_.outputs, s)});
    for (const ir::Slot& s : L_.states)
      files.push_back({"final_" + s.name + ".npy", "the final value of state " + s.name,
                       batched(s, false), slice(traj_.finalState(), B_ * s.offset, B_ * s.size)});
    if (result_.loss) {
      files.push_back({"loss.npy", "the loss", {}, {static_cast<T>(*result_.loss)}});
      for (const ir::Slot& s : L_.params)
        files.push_back({"grad_" + s.name + ".npy", "the gradient of param " + s.name,
                         s.shape.dims, slice(grads_.dParams, s.offset, s.size)});
      for (const ir::Slot& s : L_.inputs)
        files.push_back({"grad_" + s.name + ".npy", "the gradient of input " + s.name,
                         batched(s, true), gather(grads_.dInputs, s)});
      for (const ir::Slot& s : L_.states)
        files.push_back({"grad_init_" + s.name + ".npy",
                         "the gradient of the initial value of state " + s.name, batched(s, false),
                         slice(grads_.dInitialState, B_ * s.offset, B_ * s.size)});
    }
    std::map<std::string, const Pending*> seen;
    for (const Pending& p : files) {
      auto [it, fresh] = seen.emplace(p.file, &p);
      if (!fresh)
        throw UnrollError(outPath(p.file) + " would hold both " + it->second->what + " and " +
                          p.what + "; rename one of them in the cell");
    }

    refuseOverwritingInputs(files);

    // Staged, then moved into place together: an error leaves outDir as it was.
    try {
      io::StagedFiles stage(outDir_);
      std::vector<std::string> names;
      for (const Pending& p : files) {
        const std::string staged = stage.stagedPath(p.file);
        if constexpr (std::is_same_v<T, float>) {
          npy::write(staged, p.shape, p.data.data());
        } else {
          npy::write(staged, p.shape, p.data.data(), false);
        }
        names.push_back(p.file);
      }
      stage.commit(names);
    } catch (const npy::Error& e) {
      throw UnrollError(e.what());
    } catch (const io::WriteError& e) {
      throw UnrollError(e.what());
    }
    std::vector<WrittenFile> written;
    for (const Pending& p : files) written.push_back({outPath(p.file), p.shape});
    return written;
  }

 private:
  // An output must never replace one of the files it was computed from: the same path, or the
  // same file through a symlink or a hard link (fs::equivalent compares device and inode).
  void refuseOverwritingInputs(const std::vector<Pending>& files) const {
    for (const Pending& p : files) {
      const std::string out = outPath(p.file);
      std::error_code ec;
      if (!fs::exists(out, ec)) continue;
      for (const auto& [file, values] : in_.arrays) {
        const std::string in = inPath(file);
        if (fs::equivalent(out, in, ec))
          throw UnrollError(out + " would overwrite the input file " + in +
                            " (the same file); choose another output directory");
      }
    }
  }

  std::string inPath(const std::string& file) const { return (fs::path(inDir_) / file).string(); }
  std::string outPath(const std::string& file) const {
    return (fs::path(outDir_) / file).string();
  }

  const ir::Layout& L_;
  const UnrollInputs<T>& in_;
  const UnrollResult<T>& result_;
  const Trajectory<T>& traj_;
  const SequenceGradients<T>& grads_;
  int64_t T_, B_;
  std::string inDir_, outDir_;
};

}  // namespace

template <class T>
std::vector<WrittenFile> writeUnrollOutputs(const ir::Layout& layout, const UnrollInputs<T>& in,
                                            const UnrollResult<T>& result,
                                            const std::string& inDir, const std::string& outDir) {
  return FolderWriter<T>(layout, in, result, inDir, outDir).write();
}

template std::vector<WrittenFile> writeUnrollOutputs(const ir::Layout&, const UnrollInputs<float>&,
                                                     const UnrollResult<float>&,
                                                     const std::string&, const std::string&);
template std::vector<WrittenFile> writeUnrollOutputs(const ir::Layout&, const UnrollInputs<double>&,
                                                     const UnrollResult<double>&,
                                                     const std::string&, const std::string&);

}  // namespace cellc::runtime
