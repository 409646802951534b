#include "syntax/Parse.h"

#include <charconv>
#include <cmath>
#include <set>

#include "CellLexer.h"
#include "CellParser.h"
#include "antlr4-runtime.h"

// The else-if chains of dynamic_casts below re-declare `c` in each branch by design.
#pragma GCC diagnostic ignored "-Wshadow"

namespace cellc {
namespace {

using antlr4::Token;
using P = CellParser;

SourceLoc locOf(const Token* t) {
  return {static_cast<int>(t->getLine()), static_cast<int>(t->getCharPositionInLine()) + 1};
}

// A token as the user would name it.
std::string describeToken(const Token* t) {
  switch (t->getType()) {
    case Token::EOF: return "end of file";
    case P::NEWLINE: return "end of line";
    case P::IDENT: return "name '" + t->getText() + "'";
    case P::NUMBER: return "number " + t->getText();
    case P::CELL: case P::DIM: case P::INPUT: case P::NOISE: case P::STATE: case P::PARAM:
    case P::CONST: case P::OUTPUT:
      return "keyword '" + t->getText() + "'";
    default: return "'" + t->getText() + "'";
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
  if (has(Token::EOF)) parts.push_back("end of file");
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

 private:
  DiagnosticSink& diags_;
  std::set<int> lines_;
};

bool isInvalid(const Token* t) { return t->getType() == P::INVALID; }

std::string invalidMessage(const Token* t) {
  return "invalid character '" + t->getText() + "'";
}

// ANTLR's recovery, with messages in the user's terms.
class ErrorStrategy : public antlr4::DefaultErrorStrategy {
 public:
  explicit ErrorStrategy(Collector& c) : c_(c) {}

 protected:
  void reportAt(Token* t, const std::string& msg) {
    if (isInvalid(t)) c_.report(Code::E100, locOf(t), invalidMessage(t));
    else c_.report(Code::E101, locOf(t), msg);
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
    }
    return s;
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
      diags_.report(Code::E402, locOf(t), "number " + s + " is out of range");
    return v;
  }

  DiagnosticSink& diags_;
};

}  // namespace

std::optional<CellAst> parseCell(const SourceFile& file, DiagnosticSink& diags) {
  Collector collector(diags);
  if (file.text().size() > kMaxSourceBytes) {
    collector.report(Code::E102, {0, 0},
                     "file is larger than " + std::to_string(kMaxSourceBytes >> 20) + " MiB");
    return std::nullopt;
  }
  std::string text = sanitize(file.text(), collector);
  antlr4::ANTLRInputStream input(text);
  CellLexer lexer(&input);
  lexer.removeErrorListeners();  // the INVALID token catches every character the lexer cannot use
  antlr4::CommonTokenStream tokens(&lexer);
  tokens.fill();
  if (!withinLimits(tokens, collector)) return std::nullopt;

  CellParser parser(&tokens);
  parser.removeErrorListeners();
  Listener listener(collector);
  parser.addErrorListener(&listener);
  parser.setErrorHandler(std::make_shared<ErrorStrategy>(collector));
  P::FileContext* tree = parser.file();
  if (collector.any()) return std::nullopt;

  Builder build(diags);
  CellAst ast;
  P::CellDeclContext* cell = tree->cellDecl();
  ast.name = cell->name->getText();
  ast.loc = locOf(cell->name);
  for (P::StmtContext* s : cell->stmt()) ast.stmts.push_back(build.stmt(s));
  if (diags.hasErrors()) return std::nullopt;
  return ast;
}

}  // namespace cellc
