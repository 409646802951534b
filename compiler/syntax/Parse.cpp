#include "syntax/Parse.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "CellLexer.h"
#include "CellParser.h"
#include "antlr4-runtime.h"
#include "diag/Text.h"
#include "syntax/Integrate.h"

// The else-if chains of dynamic_casts below re-declare `c` in each branch by design.
#pragma GCC diagnostic ignored "-Wshadow"

namespace cellc {
namespace {

using antlr4::Token;
using P = CellParser;

SourceLoc locOf(const Token* t) {
  return {static_cast<int>(t->getLine()), static_cast<int>(t->getCharPositionInLine()) + 1};
}

// Token text for a message: a 100,000-digit literal is quoted by its start, not in full.
std::string clipped(const std::string& text) { return printableExcerpt(text, 40); }

// A token as the user would name it.
std::string describeToken(const Token* t) {
  switch (t->getType()) {
    case Token::EOF: return "end of statement";  // statements are parsed one at a time
    case P::NEWLINE: return "end of line";
    case P::IDENT: return "name '" + clipped(t->getText()) + "'";
    case P::NUMBER: return "number " + clipped(t->getText());
    case P::CELL: case P::DIM: case P::INPUT: case P::NOISE: case P::STATE: case P::PARAM:
    case P::CONST: case P::OUTPUT: case P::INTEGRATOR:
      return "keyword '" + t->getText() + "'";
    default: return "'" + clipped(t->getText()) + "'";
  }
}

// What the parser expected, in the language's terms rather than ANTLR's token list.
std::string describeExpected(const antlr4::misc::IntervalSet& set) {
  auto has = [&](size_t t) { return set.contains(t); };
  std::vector<std::string> parts;
  if (has(P::NUMBER) && has(P::MINUS) && has(P::LPAREN)) {
    parts.push_back("an expression");
  } else {
    if (has(P::DIM) || has(P::PARAM) || has(P::STATE)) parts.push_back("a declaration or equation");
    else if (has(P::IDENT)) parts.push_back("a name");
    if (has(P::NUMBER) && !has(P::IDENT)) parts.push_back("a number");
  }
  const std::pair<size_t, const char*> punct[] = {
      {P::ASSIGN, "'='"}, {P::TILDE, "'~'"}, {P::LBRACK, "'['"}, {P::RBRACK, "']'"},
      {P::LPAREN, "'('"}, {P::RPAREN, "')'"}, {P::LBRACE, "'{'"}, {P::RBRACE, "'}'"},
      {P::COMMA, "','"}, {P::COLON, "':'"}, {P::CELL, "'cell'"}, {P::PRIME, "'''"}};
  bool exprExpected = !parts.empty() && parts[0] == "an expression";
  for (auto [tok, word] : punct) {
    if (!has(tok)) continue;
    // Inside an expression '(' and '[' merely continue it; naming them adds noise.
    if (exprExpected && (tok == P::LPAREN || tok == P::LBRACK)) continue;
    parts.push_back(word);
  }
  if (has(P::NEWLINE) || has(P::SEMI)) parts.push_back("end of statement");
  if (has(Token::EOF)) parts.push_back("end of statement");
  if (parts.empty()) return "something else";
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i)
    s += (i == 0 ? "" : i + 1 == parts.size() ? " or " : ", ") + parts[i];
  return s;
}

// Reports at most one syntax error per line, so one mistake yields one message.
class Collector {
 public:
  explicit Collector(DiagnosticSink& diags) : diags_(diags) {}
  void report(Code code, SourceLoc loc, std::string msg) {
    if (!lines_.insert(loc.line).second) return;
    diags_.report(code, loc, std::move(msg));
  }
  bool any() const { return !lines_.empty(); }
  size_t count() const { return lines_.size(); }

 private:
  DiagnosticSink& diags_;
  std::set<int> lines_;
};

bool isInvalid(const Token* t) { return t->getType() == P::INVALID; }

std::string invalidMessage(const Token* t) {
  std::string text = t->getText();
  unsigned char c = text.empty() ? 0 : static_cast<unsigned char>(text[0]);
  if (c < 0x20 || c >= 0x7f) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "invalid character (byte 0x%02X)", c);
    return buf;
  }
  return "invalid character '" + text + "'";
}

// ANTLR's recovery, with messages in the user's terms.
// Where a statement ends: just past its last token, and what ended it (the parser sees EOF).
struct StatementEnd {
  SourceLoc loc;
  std::string what;  // "end of line", "';'", "'}'", "end of file"
};

class ErrorStrategy : public antlr4::DefaultErrorStrategy {
 public:
  ErrorStrategy(Collector& c, StatementEnd end) : c_(c), end_(std::move(end)) {}
  // Whether this statement had a syntax error (its report may have been merged with an earlier
  // one on the same line, so the collector's count cannot tell).
  bool failed() const { return failed_; }

 protected:
  void reportAt(Token* t, std::string msg) {
    failed_ = true;
    if (isInvalid(t)) return c_.report(Code::E100, locOf(t), invalidMessage(t));
    if (t->getType() != Token::EOF) return c_.report(Code::E101, locOf(t), msg);
    // The statement's end: name what ended it, at the column just past its last token.
    const std::string eos = "end of statement";
    for (size_t at = msg.find(eos); at != std::string::npos; at = msg.find(eos))
      msg.replace(at, eos.size(), end_.what);
    c_.report(Code::E101, end_.loc, msg);
  }
  void reportNoViableAlternative(antlr4::Parser* p, const antlr4::NoViableAltException& e) override {
    Token* t = e.getOffendingToken();
    reportAt(t, "unexpected " + describeToken(t) + ", expected " +
                    describeExpected(p->getExpectedTokens()));
  }
  void reportInputMismatch(antlr4::Parser*, const antlr4::InputMismatchException& e) override {
    Token* t = e.getOffendingToken();
    reportAt(t, "unexpected " + describeToken(t) + ", expected " +
                    describeExpected(e.getExpectedTokens()));
  }
  void reportFailedPredicate(antlr4::Parser*, const antlr4::FailedPredicateException& e) override {
    reportAt(e.getOffendingToken(), "unexpected " + describeToken(e.getOffendingToken()));
  }
  void reportUnwantedToken(antlr4::Parser* p) override {
    if (inErrorRecoveryMode(p)) return;
    beginErrorCondition(p);
    Token* t = p->getCurrentToken();
    reportAt(t, "unexpected " + describeToken(t) + ", expected " +
                    describeExpected(getExpectedTokens(p)));
  }
  void reportMissingToken(antlr4::Parser* p) override {
    if (inErrorRecoveryMode(p)) return;
    beginErrorCondition(p);
    Token* t = p->getCurrentToken();
    reportAt(t, "expected " + describeExpected(getExpectedTokens(p)) + " before " +
                    describeToken(t));
  }

 private:
  Collector& c_;
  StatementEnd end_;
  bool failed_ = false;
};

// Any error that reaches a listener without passing the strategy (there should be none) is
// still reported, with ANTLR's own words.
class Listener : public antlr4::BaseErrorListener {
 public:
  explicit Listener(Collector& c) : c_(c) {}
  void syntaxError(antlr4::Recognizer*, Token* t, size_t line, size_t col, const std::string& msg,
                   std::exception_ptr) override {
    SourceLoc loc{static_cast<int>(line), static_cast<int>(col) + 1};
    if (t && isInvalid(t)) c_.report(Code::E100, loc, invalidMessage(t));
    else c_.report(Code::E101, loc, msg);
  }

 private:
  Collector& c_;
};

// Non-ASCII bytes and control characters are reported (outside comments) and replaced by spaces
// before ANTLR sees the text, so columns count bytes and no decoder can throw.
std::string sanitize(const std::string& text, Collector& c) {
  std::string out = text;
  int line = 1, col = 1;
  bool inComment = false;
  for (size_t i = 0; i < out.size(); ++i) {
    unsigned char ch = static_cast<unsigned char>(out[i]);
    if (ch == '\n') {
      ++line, col = 1, inComment = false;
      continue;
    }
    if (ch == '#') inComment = true;
    bool ok = ch == '\t' || ch == '\r' || ch == '\f' || (ch >= 0x20 && ch < 0x7f);
    if (!ok) {
      if (!inComment) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "invalid character (byte 0x%02X)", ch);
        c.report(Code::E100, {line, col}, buf);
      }
      out[i] = ' ';
    }
    ++col;
  }
  return out;
}

// Guards the recursive parser and tree walks against pathological nesting or statement length.
bool withinLimits(antlr4::CommonTokenStream& tokens, Collector& c) {
  int depth = 0, count = 0;
  for (Token* t : tokens.getTokens()) {
    size_t ty = t->getType();
    if (ty == P::LPAREN || ty == P::LBRACK) {
      if (++depth > kMaxBracketDepth) {
        c.report(Code::E102, locOf(t),
                 "brackets nested deeper than " + std::to_string(kMaxBracketDepth) + " levels");
        return false;
      }
    } else if ((ty == P::RPAREN || ty == P::RBRACK) && depth > 0) {
      --depth;
    }
    if (ty == P::NEWLINE || ty == P::SEMI || ty == P::LBRACE || ty == P::RBRACE) count = 0;
    else if (++count > kMaxTokensPerStatement) {
      c.report(Code::E102, locOf(t),
               "statement longer than " + std::to_string(kMaxTokensPerStatement) + " tokens");
      return false;
    }
  }
  return true;
}

// Parse tree to syntax tree.
class Builder {
 public:
  explicit Builder(DiagnosticSink& d) : diags_(d) {}

  ExprPtr expr(P::ExprContext* ctx) {
    auto e = std::make_shared<Expr>();
    e->loc = locOf(ctx->getStart());
    if (auto* c = dynamic_cast<P::NumberExprContext*>(ctx)) {
      e->kind = Expr::Kind::Number;
      e->number = parseNumber(c->NUMBER()->getSymbol());
    } else if (auto* c = dynamic_cast<P::NameExprContext*>(ctx)) {
      e->kind = Expr::Kind::Name;
      e->name = c->IDENT()->getText();
      e->primed = c->PRIME() != nullptr;
    } else if (auto* c = dynamic_cast<P::ParenExprContext*>(ctx)) {
      return expr(c->expr());
    } else if (auto* c = dynamic_cast<P::NegExprContext*>(ctx)) {
      e->kind = Expr::Kind::Neg;
      e->args = {expr(c->operand)};
    } else if (auto* c = dynamic_cast<P::PowExprContext*>(ctx)) {
      binary(*e, '^', c->base, c->exponent, c->CARET()->getSymbol());
    } else if (auto* c = dynamic_cast<P::MulExprContext*>(ctx)) {
      binary(*e, c->op->getText()[0], c->lhs, c->rhs, c->op);
    } else if (auto* c = dynamic_cast<P::AddExprContext*>(ctx)) {
      binary(*e, c->op->getText()[0], c->lhs, c->rhs, c->op);
    } else if (auto* c = dynamic_cast<P::CmpExprContext*>(ctx)) {
      const std::string op = c->op->getText();
      // a < b < c would mean (a < b) < c here, not Python's a < b and b < c: refused.
      if (dynamic_cast<P::CmpExprContext*>(c->lhs))
        diags_.report(Code::E101, locOf(c->op),
                      "comparisons do not chain: write (a < b) * (b < c) for both, or parenthesize");
      binary(*e, op == ">=" ? 'G' : op == "<=" ? 'L' : op[0], c->lhs, c->rhs, c->op);
    } else if (auto* c = dynamic_cast<P::CallExprContext*>(ctx)) {
      InitCall call = this->call(c->call());
      e->kind = Expr::Kind::Call;
      e->name = call.fn;
      e->callArgs = std::move(call.args);
    } else if (auto* c = dynamic_cast<P::IndexExprContext*>(ctx)) {
      e->kind = Expr::Kind::Index;
      e->args = {expr(c->operand)};
      e->loc = locOf(c->LBRACK()->getSymbol());
      for (P::IndexContext* ic : c->index()) e->indices.push_back(index(ic));
    }
    return e;
  }

  InitCall call(P::CallContext* ctx) {
    InitCall call;
    call.fn = ctx->fn->getText();
    call.loc = locOf(ctx->fn);
    if (ctx->args())
      for (P::ArgContext* a : ctx->args()->arg()) {
        Arg arg;
        arg.loc = locOf(a->getStart());
        if (a->key) arg.key = a->key->getText();
        arg.value = expr(a->expr());
        call.args.push_back(std::move(arg));
      }
    return call;
  }

  Stmt stmt(P::StmtContext* ctx) {
    Stmt s;
    auto decl = [&](Stmt::Kind k, Token* name, P::ShapeContext* shape) {
      s.kind = k;
      s.name = name->getText();
      s.loc = locOf(name);
      if (shape) {
        s.shape.emplace();
        for (P::ExprContext* d : shape->expr()) s.shape->push_back(expr(d));
      }
    };
    if (auto* c = dynamic_cast<P::DimDeclContext*>(ctx)) {
      decl(Stmt::Kind::Dim, c->name, nullptr);
      s.value = expr(c->value);
    } else if (auto* c = dynamic_cast<P::InputDeclContext*>(ctx)) {
      decl(Stmt::Kind::Input, c->name, c->shape());
    } else if (auto* c = dynamic_cast<P::NoiseDeclContext*>(ctx)) {
      decl(Stmt::Kind::Noise, c->name, c->shape());
      if (c->initSpec())
        for (P::CallContext* cc : c->initSpec()->call()) s.init.push_back(call(cc));
    } else if (auto* c = dynamic_cast<P::StateDeclContext*>(ctx)) {
      decl(Stmt::Kind::State, c->name, c->shape());
      if (c->init) s.value = expr(c->init);
    } else if (auto* c = dynamic_cast<P::ParamDeclContext*>(ctx)) {
      decl(Stmt::Kind::Param, c->name, c->shape());
      if (c->initSpec())
        for (P::CallContext* cc : c->initSpec()->call()) s.init.push_back(call(cc));
    } else if (auto* c = dynamic_cast<P::ConstDeclContext*>(ctx)) {
      decl(Stmt::Kind::Const, c->name, c->shape());
      s.value = expr(c->value);
    } else if (auto* c = dynamic_cast<P::OutputDeclContext*>(ctx)) {
      decl(Stmt::Kind::Output, c->name, c->shape());
      s.value = expr(c->value);
    } else if (auto* c = dynamic_cast<P::EquationContext*>(ctx)) {
      decl(Stmt::Kind::Equation, c->name, nullptr);
      s.primed = c->PRIME() != nullptr;
      s.value = expr(c->value);
    } else if (auto* c = dynamic_cast<P::DerivativeContext*>(ctx)) {
      decl(Stmt::Kind::Equation, c->name, nullptr);
      for (Token* t : {c->d, c->dt})
        if (t->getText() != (t == c->d ? "d" : "dt"))
          diags_.report(Code::E101, locOf(t),
                        "'" + t->getText() + "': a derivative is written d(" + s.name + ")/dt = ...");
      s.primed = true;
      s.derivative = true;
      s.dtLoc = locOf(c->dt);
      s.value = expr(c->value);  // f: integrate() makes it the cell's discrete step
    }
    return s;
  }

  // `integrator NAME`: one per cell; the name is checked by integrate().
  void integrator(P::IntegratorDeclContext* c, CellAst& ast) {
    if (!ast.integrator.empty()) {
      diags_.report(Code::E217, locOf(c->method),
                    "the integrator is already chosen at line " + std::to_string(ast.integratorLoc.line) +
                        " (one per cell)");
      return;
    }
    ast.integrator = c->method->getText();
    ast.integratorLoc = locOf(c->method);
  }

 private:
  void binary(Expr& e, char op, P::ExprContext* l, P::ExprContext* r, Token* opTok) {
    e.kind = Expr::Kind::Binary;
    e.op = op;
    e.loc = locOf(opTok);
    e.args = {expr(l), expr(r)};
  }

  IndexItem index(P::IndexContext* ctx) {
    IndexItem it;
    it.loc = locOf(ctx->getStart());
    if (auto* c = dynamic_cast<P::SliceIndexContext*>(ctx)) {
      it.isSlice = true;
      if (c->lo) it.lo = expr(c->lo);
      if (c->hi) it.hi = expr(c->hi);
    } else if (auto* c = dynamic_cast<P::PointIndexContext*>(ctx)) {
      it.at = expr(c->at);
    }
    return it;
  }

  double parseNumber(Token* t) {
    std::string s = t->getText();
    double v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || !std::isfinite(v))
      diags_.report(Code::E402, locOf(t), "number " + clipped(s) + " is out of range");
    return v;
  }

  DiagnosticSink& diags_;
};

}  // namespace

namespace {

bool isSeparator(const Token* t) { return t->getType() == P::NEWLINE || t->getType() == P::SEMI; }

// Parses one statement's tokens on their own (the lexer already dropped newlines inside brackets),
// so an error can never cascade into the next statement. Returns false on a syntax error.
bool parseStatement(const std::vector<Token*>& toks, Token* terminator, Collector& collector,
                    Builder& build, CellAst& ast) {
  Token* last = toks.back();
  StatementEnd end{{static_cast<int>(last->getLine()),
                    static_cast<int>(last->getCharPositionInLine() + last->getText().size()) + 1},
                   "end of line"};
  if (terminator->getType() != Token::EOF) end.loc = locOf(terminator);
  if (terminator->getType() == P::SEMI) end.what = "';'";
  else if (terminator->getType() == P::RBRACE) end.what = "'}'";
  else if (terminator->getType() == Token::EOF) end.what = "end of file";
  std::vector<std::unique_ptr<Token>> copy;
  for (Token* t : toks) copy.push_back(std::make_unique<antlr4::CommonToken>(t));
  antlr4::ListTokenSource source(std::move(copy));
  antlr4::CommonTokenStream stream(&source);
  CellParser parser(&stream);
  parser.removeErrorListeners();
  Listener listener(collector);
  parser.addErrorListener(&listener);
  auto strategy = std::make_shared<ErrorStrategy>(collector, end);
  parser.setErrorHandler(strategy);
  P::StmtLineContext* line = parser.stmtLine();
  if (strategy->failed() || parser.getNumberOfSyntaxErrors() > 0) return false;
  if (auto* c = dynamic_cast<P::IntegratorDeclContext*>(line->stmt())) build.integrator(c, ast);
  else ast.stmts.push_back(build.stmt(line->stmt()));
  return true;
}

}  // namespace

std::optional<CellAst> parseCell(const SourceFile& file, DiagnosticSink& diags) {
  Collector collector(diags);
  if (file.text().size() > kMaxSourceBytes) {
    // Located where the limit falls: the first byte past it.
    const std::string_view before = std::string_view(file.text()).substr(0, kMaxSourceBytes);
    const size_t nl = before.rfind('\n');
    const int line = 1 + static_cast<int>(std::count(before.begin(), before.end(), '\n'));
    const int col = 1 + static_cast<int>(nl == std::string_view::npos ? before.size() : before.size() - nl - 1);
    collector.report(Code::E102, {line, col},
                     "the source is larger than " + std::to_string(kMaxSourceBytes >> 20) + " MiB (" +
                         std::to_string(kMaxSourceBytes) + " bytes), the limit of a .cell file; it is "
                         "passed here");
    return std::nullopt;
  }
  std::string text = sanitize(file.text(), collector);
  antlr4::ANTLRInputStream input(text);
  CellLexer lexer(&input);
  lexer.removeErrorListeners();  // the INVALID token catches every character the lexer cannot use
  antlr4::CommonTokenStream tokens(&lexer);
  tokens.fill();
  if (!withinLimits(tokens, collector)) return std::nullopt;
  const std::vector<Token*> toks = tokens.getTokens();  // ends with EOF
  auto report = [&](Token* t, const std::string& msg) {
    if (isInvalid(t)) collector.report(Code::E100, locOf(t), invalidMessage(t));
    else collector.report(Code::E101, locOf(t), msg);
  };
  size_t i = 0;
  auto at = [&](size_t type) { return toks[i]->getType() == type; };
  while (isSeparator(toks[i])) ++i;

  // The header: cell NAME {
  CellAst ast;
  bool header = false;
  if (!at(P::CELL)) {
    report(toks[i], "unexpected " + describeToken(toks[i]) + ", a .cell file starts with 'cell NAME {'");
  } else if (++i; !at(P::IDENT)) {
    report(toks[i], "expected the cell's name after 'cell', found " + describeToken(toks[i]));
  } else {
    ast.name = toks[i]->getText();
    ast.loc = locOf(toks[i]);
    ++i;
    while (at(P::NEWLINE)) ++i;
    if (at(P::LBRACE)) {
      ++i;
      header = true;
    } else {
      report(toks[i], "expected '{' after 'cell " + ast.name + "', found " + describeToken(toks[i]));
    }
  }
  if (!header) {
    // Resume after the header's '{' if the line has one, else at the next line.
    size_t j = i;
    while (!at(P::NEWLINE) && !at(Token::EOF) && !at(P::LBRACE)) ++i;
    if (at(P::LBRACE)) ++i;
    else if (j == i && !at(Token::EOF)) ++i;
  }

  // The body, statement by statement, up to the closing '}'.
  Builder build(diags);
  bool closed = false;
  std::vector<Token*> stmt;
  while (true) {
    stmt.clear();
    while (!isSeparator(toks[i]) && !at(P::RBRACE) && !at(Token::EOF)) stmt.push_back(toks[i++]);
    if (!stmt.empty()) parseStatement(stmt, toks[i], collector, build, ast);
    if (at(P::RBRACE)) {
      ++i;
      closed = true;
      break;
    }
    if (at(Token::EOF)) break;
    ++i;  // the separator
  }
  if (!closed) {
    report(toks[i], "expected '}' to close cell " + (ast.name.empty() ? std::string("") : ast.name) +
                        " before the end of the file");
  } else {
    while (isSeparator(toks[i])) ++i;
    if (!at(Token::EOF))
      report(toks[i], "unexpected " + describeToken(toks[i]) +
                          " after the end of the cell (a file holds one cell)");
  }
  if (collector.any() || diags.hasErrors()) return std::nullopt;
  if (!integrate(ast, diags)) return std::nullopt;
  return ast;
}

}  // namespace cellc
